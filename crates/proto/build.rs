//! Generates the FunctionRpc messages and service from `proto/FunctionRpc.proto`, with a
//! protobuf compiler written in Rust (no `protoc` needed on the machine).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["FunctionRpc.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
