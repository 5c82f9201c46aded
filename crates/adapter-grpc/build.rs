//! Generates the gRPC servers and clients from `proto/` (`aki.embed.v1`, and TEI's `tei.v1`)
//! with the vendored `protoc` (no system protoc needed) and writes the descriptor set served by
//! reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PROTOC", protoc);
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("aki_embed_descriptor.bin"))
        .compile_protos(&["proto/aki/embed/v1/embed.proto", "proto/tei/v1/tei.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
