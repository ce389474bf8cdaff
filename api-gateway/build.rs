//! Embeds the GraphiQL assets when `cargo xtask` has fetched them into `assets/graphiql/`
//! (from the npm registry; they are not committed). Without them the gateway still builds and
//! serves a GraphiQL page that loads the same files from a CDN.

use std::path::Path;

/// The files the offline page needs, as `xtask` lays them out.
const FILES: [&str; 4] =
    ["react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "graphiql.min.css"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(graphiql_assets)");
    println!("cargo::rerun-if-changed=assets/graphiql");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets").join("graphiql");
    for file in FILES {
        println!("cargo::rerun-if-changed=assets/graphiql/{file}");
    }
    if FILES.iter().all(|file| dir.join(file).is_file()) {
        println!("cargo::rustc-cfg=graphiql_assets");
    }
}
