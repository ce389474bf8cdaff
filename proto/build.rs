//! Compiles the `.proto` contracts with `protox` (pure Rust), so no system `protoc` is needed.

use prost::Message as _;

const PROTOS: [&str; 3] = ["user.proto", "product.proto", "order.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }

    let descriptors = protox::compile(PROTOS, [manifest_dir])?;
    // The encoded set is served by gRPC reflection, so tools like grpcurl work without the files.
    std::fs::write(out_dir.join("descriptor.bin"), descriptors.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
