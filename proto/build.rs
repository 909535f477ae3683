//! Compiles `dbadger/v1/*.proto` without a system `protoc`: protox parses the files into a
//! descriptor set, and madsim-tonic-build generates both the real tonic code and the simulated
//! one (selected at compile time by `--cfg madsim`) from that set.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "dbadger/v1/errors.proto",
    "dbadger/v1/kv.proto",
    "dbadger/v1/cluster.proto",
    "dbadger/v1/raft.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("dbadger_descriptor.bin");

    let descriptors = protox::compile(PROTOS, ["."])?;
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptors),
    )?;

    madsim_tonic_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .skip_protoc_run()
        .build_client(true)
        .build_server(true)
        .compile_protos(PROTOS, &["."])?;

    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
