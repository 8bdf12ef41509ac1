//! Compiles `proto/` into Rust with protox (a pure-Rust protobuf compiler: no
//! `protoc` is looked for or run) and tonic-prost-build. Envoy and Google
//! types are not generated: `extern_path` maps them to envoy-types, and the
//! files under `proto/import-stubs/` only name them for protox.

use std::io;
use std::path::Path;

/// Our own .proto files, relative to `proto/`.
const PROTOS: &[&str] = &[
    "cilium/npds.proto",
    "cilium/nphds.proto",
    "cilium/bpf_metadata.proto",
    "cilium/l7policy.proto",
    "cilium/network_filter.proto",
    "cilium/tls_wrapper.proto",
    "cilium/accesslog.proto",
    "standalonednsproxy/standalone-dns-proxy.proto",
];

/// Imported packages and the envoy-types modules that hold them.
const EXTERN: &[(&str, &str)] = &[
    (
        ".envoy.service.discovery.v3",
        "::envoy_types::pb::envoy::service::discovery::v3",
    ),
    (
        ".envoy.config.core.v3",
        "::envoy_types::pb::envoy::config::core::v3",
    ),
    (
        ".envoy.config.route.v3",
        "::envoy_types::pb::envoy::config::route::v3",
    ),
    (
        ".envoy.type.matcher.v3",
        // Written unescaped: prost-build escapes `type` itself.
        "::envoy_types::pb::envoy::type::matcher::v3",
    ),
    // envoy-types compiles its own well-known types (not prost-types).
    (".google.protobuf", "::envoy_types::pb::google::protobuf"),
];

/// Map fields kept as BTreeMap, so that encoding is deterministic.
const BTREE_MAPS: &[&str] = &[
    ".cilium.L7NetworkPolicyRule.rule",
    ".cilium.NetworkFilter.proxylib_params",
    ".cilium.L7LogEntry.fields",
];

fn main() -> io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    println!("cargo:rerun-if-changed={}", root.display());

    let mut compiler = protox::Compiler::new([root.clone(), root.join("import-stubs")])
        .map_err(io::Error::other)?;
    // Imports are in the set so that prost-build sees the whole message
    // graph; extern_path keeps it from generating code for them.
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files(PROTOS).map_err(io::Error::other)?;
    let files = compiler.file_descriptor_set();

    let mut config = tonic_prost_build::Config::new();
    // `prost::Name` with the host the agent's `anypb.New` writes, so that
    // `type_url()` and `envoy_types::util::pack_any` match the agent.
    config.enable_type_names();
    config.type_name_domain(["."], "type.googleapis.com");
    config.btree_map(BTREE_MAPS);

    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    let mut builder = tonic_prost_build::configure()
        .build_client(grpc)
        .build_server(grpc)
        .build_transport(grpc)
        // Only drops prost's default `.google.protobuf` -> prost-types
        // mapping (no WKT file is in the set), so that the extern_path
        // below takes envoy-types' copies.
        .compile_well_known_types(true);
    for (proto, rust) in EXTERN {
        builder = builder.extern_path(*proto, *rust);
    }
    builder.compile_fds_with_config(files, config)
}
