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
    let config = format!(
        r#"
admin: {{admin}}
listeners:
  - {{port: {port}, direction: ingress, upstream: "127.0.0.5:{server_port}"}}
endpoints:
  - {{id: 5, ips: [127.0.0.5], labels: {{app: echo-grpc}}}}
identities:
  - {{id: 500, labels: {{app: client}}, cidrs: [127.0.0.1/32]}}
policies: [policy.yaml]
"#
    );
    let policy = format!(
        r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{name: grpc}}
spec:
  endpointSelector: {{matchLabels: {{app: echo-grpc}}}}
  ingress:
  - fromEndpoints: [{{matchLabels: {{app: client}}}}]
    toPorts:
    - ports: [{{port: "{server_port}", protocol: TCP}}]
      rules:
        http:
        - method: POST
          path: "/demo.Echo/Allowed"
"#
    );
    let pc = Portcullis::start(&config, &[("policy.yaml", &policy)]);
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
    let config = format!(
        r#"
admin: {{admin}}
listeners:
  - {{port: {port}, direction: ingress, upstream: "127.0.0.6:{ws_port}"}}
endpoints:
  - {{id: 6, ips: [127.0.0.6], labels: {{app: ws}}}}
policies: [policy.yaml]
"#
    );
    let policy = format!(
        r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{name: ws}}
spec:
  endpointSelector: {{matchLabels: {{app: ws}}}}
  ingress:
  - fromEntities: [world]
    toPorts:
    - ports: [{{port: "{ws_port}", protocol: TCP}}]
      rules:
        http:
        - method: GET
          path: "/chat"
"#
    );
    let pc = Portcullis::start(&config, &[("policy.yaml", &policy)]);
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
