//! A real gRPC client and server (python grpcio) and a real WebSocket
//! upgrade, through Portcullis.

mod common;

use portcullis_tests::*;

#[test]
fn grpc_allowed_method_succeeds_and_denied_gets_status_7() {
    let server_port = free_port();
    let _server = python_peer(
        "grpc_server.py",
        &["--port", &server_port.to_string(), "--host", "127.0.0.5"],
    );
    let port = free_port();
    let policy = Cnp::new("grpc", "echo-grpc").allow_http(
        &from_app("client"),
        server_port,
        &[http_rule("POST", "/demo.Echo/Allowed")],
    );
    let config = Config::new()
        .listener(Listener::ingress(port).upstream(format_args!("127.0.0.5:{server_port}")))
        .endpoint(5, "127.0.0.5", "app: echo-grpc")
        .identity(500, "app: client", "127.0.0.1/32")
        .policy(policy);
    let pc = Portcullis::start(&config);
    pc.wait_ready();
    let target = format!("127.0.0.1:{port}");
    let (code, out) = python_run(
        "grpc_client.py",
        &["--target", &target, "--method", "/demo.Echo/Allowed"],
    );
    assert_eq!(code, 0, "{out}\n{}", pc.log());
    assert!(out.starts_with("OK"), "{out}");
    let (code, out) = python_run(
        "grpc_client.py",
        &["--target", &target, "--method", "/demo.Echo/Forbidden"],
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("STATUS 7 PERMISSION_DENIED"), "{out}");
    let log = pc.access_log();
    assert!(
        log.iter()
            .any(|e| e["path"] == "/demo.Echo/Forbidden" && e["verdict"] == "denied"),
        "{log:#?}"
    );
}

#[test]
fn websocket_upgrade_passes_when_allowed() {
    let ws_port = free_port();
    let _server = python_peer(
        "ws_echo_server.py",
        &["--port", &ws_port.to_string(), "--host", "127.0.0.6"],
    );
    let port = free_port();
    let policy = Cnp::new("ws", "ws").allow_http(
        "fromEntities: [world]",
        ws_port,
        &[http_rule("GET", "/chat")],
    );
    let config = Config::new()
        .listener(Listener::ingress(port).upstream(format_args!("127.0.0.6:{ws_port}")))
        .endpoint(6, "127.0.0.6", "app: ws")
        .policy(policy);
    let pc = Portcullis::start(&config);
    pc.wait_ready();
    let (code, out) = python_run(
        "ws_client.py",
        &[&format!("ws://127.0.0.1:{port}/chat"), "--message", "hello"],
    );
    assert_eq!((code, out.trim()), (0, "OK hello"), "{}", pc.log());
    let (code, out) = python_run("ws_client.py", &[&format!("ws://127.0.0.1:{port}/admin")]);
    assert_eq!(
        (code, out.trim()),
        (1, "HTTP 403"),
        "a denied path must not upgrade"
    );
}
