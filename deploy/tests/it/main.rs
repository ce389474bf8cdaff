//! The deployment artefacts against the binaries: schemas, cross-checks, and the binaries
//! started with each artefact's environment.

mod compose;
mod containers;
mod dockerfile;
mod kubernetes;
mod launch;
mod tools;
