//! The Star Wars demo from the Cilium docs, end to end: curl → Portcullis →
//! a real nginx standing in for the deathstar, over HTTP/1.1 and h2c.

use portcullis_tests::*;

const POLICY: &str = r#"
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "rule1"
spec:
  description: "L7 policy to restrict access to specific HTTP call"
  endpointSelector:
    matchLabels:
      org: empire
      class: deathstar
  ingress:
  - fromEndpoints:
    - matchLabels:
        org: empire
    toPorts:
    - ports:
      - port: "{h1}"
        protocol: TCP
      - port: "{h2}"
        protocol: TCP
      rules:
        http:
        - method: "POST"
          path: "/v1/request-landing"
"#;

struct Demo {
    pc: Portcullis,
    _nginx: Nginx,
    h1: u16,
    h2: u16,
}

fn demo() -> Demo {
    let (o1, o2) = (free_port(), free_port());
    let nginx = Nginx::start(
        &format!(
            r#"server {{ listen 127.0.0.10:{o1}; listen 127.0.0.10:{o2} http2;
                 location / {{ return 200 "deathstar: $request_method $request_uri host=$host\n"; }} }}"#
        ),
        &[o1, o2],
    );
    let (h1, h2) = (free_port(), free_port());
    let policy = POLICY
        .replace("{h1}", &o1.to_string())
        .replace("{h2}", &o2.to_string());
    let config = Config::new()
        .listener(Listener::ingress(h1).upstream(format_args!("{ORIGIN_IP}:{o1}")))
        .listener(Listener::ingress(h2).upstream(format_args!("{ORIGIN_IP}:{o2}")))
        .endpoint(3001, ORIGIN_IP, "org: empire, class: deathstar")
        .identity(20002, "org: empire, class: tiefighter", "127.0.0.2/32")
        .identity(20003, "org: alliance, class: xwing", "127.0.0.3/32")
        .policy(policy);
    let pc = Portcullis::start(&config);
    pc.wait_ready();
    Demo {
        pc,
        _nginx: nginx,
        h1,
        h2,
    }
}

fn url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

#[test]
fn tiefighter_lands_over_http1_and_h2c() {
    let d = demo();
    for (port, extra) in [(d.h1, None), (d.h2, Some("--http2-prior-knowledge"))] {
        let mut args = vec![
            "--interface",
            "127.0.0.2",
            "-XPOST",
            "-H",
            "Host: deathstar.default.svc.cluster.local",
        ];
        args.extend(extra);
        let u = url(port, "/v1/request-landing");
        args.push(&u);
        let r = curl(&args);
        assert_eq!(r.status, 200, "{r:?}\n{}", d.pc.log());
        assert_eq!(
            r.body,
            "deathstar: POST /v1/request-landing host=deathstar.default.svc.cluster.local\n"
        );
    }
}

#[test]
fn exhaust_port_is_denied_with_403() {
    let d = demo();
    for (port, extra) in [(d.h1, None), (d.h2, Some("--http2-prior-knowledge"))] {
        let mut args = vec!["--interface", "127.0.0.2", "-XPUT"];
        args.extend(extra);
        let u = url(port, "/v1/exhaust-port");
        args.push(&u);
        let r = curl(&args);
        assert_eq!(
            (r.status, r.body.as_str()),
            (403, "Access denied\r\n"),
            "{r:?}"
        );
    }
    // Method matters too: GET on the allowed path is denied.
    let r = curl(&[
        "--interface",
        "127.0.0.2",
        &url(d.h1, "/v1/request-landing"),
    ]);
    assert_eq!(r.status, 403);
    let log = d.pc.access_log();
    let denied: Vec<_> = log.iter().filter(|e| e["verdict"] == "denied").collect();
    assert_eq!(denied.len(), 3, "{log:#?}");
    let e = denied[0];
    assert_eq!(e["kind"], "http");
    assert_eq!(e["method"], "PUT");
    assert_eq!(e["path"], "/v1/exhaust-port");
    assert_eq!(e["status"], 403);
    assert_eq!(e["src_identity"], 20002);
    assert_eq!(e["direction"], "ingress");
    assert_eq!(
        d.pc.metric("portcullis_http_requests_total{verdict=\"denied\"}"),
        3.0
    );
}

#[test]
fn xwing_is_reset_at_l3() {
    let d = demo();
    let r = curl(&[
        "--interface",
        "127.0.0.3",
        "-XPOST",
        &url(d.h1, "/v1/request-landing"),
    ]);
    // 56: reset while receiving, 52: empty reply.
    // 7: reset before curl saw the connect complete (loopback is that fast).
    assert!([7, 52, 56].contains(&r.exit), "expected a reset, got {r:?}");
    assert_eq!(r.status, 0);
    let log = d.pc.access_log();
    let e = log
        .iter()
        .find(|e| e["kind"] == "connection")
        .expect("connection event");
    assert_eq!(e["verdict"], "denied");
    assert_eq!(e["src_identity"], 20003);
    assert_eq!(
        d.pc.metric("portcullis_connections_total{verdict=\"denied\"}"),
        1.0
    );
    // An unknown source is WORLD (2) and also refused.
    let r = curl(&[
        "--interface",
        "127.0.0.4",
        &url(d.h1, "/v1/request-landing"),
    ]);
    assert!([7, 52, 56].contains(&r.exit), "{r:?}");
}

#[test]
fn admin_reports_ready_metrics_and_config() {
    let d = demo();
    assert_eq!(d.pc.admin_get("/ready"), (200, "ready\n".into()));
    let (status, dump) = d.pc.admin_get("/config_dump");
    assert_eq!(status, 200);
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let ep = &dump["policy"]["endpoints"][0];
    assert_eq!(ep["endpoint_id"], 3001);
    assert_eq!(ep["endpoint_ips"][0], "127.0.0.10");
    let rule = &ep["ingress"][0]["rules"][0];
    assert!(
        rule["remote_policies"]
            .as_array()
            .unwrap()
            .contains(&20002.into()),
        "{rule}"
    );
    assert!(
        rule["http"].to_string().contains("request-landing"),
        "{rule}"
    );
    assert!(dump["last_rejection"].is_null());
    // Standalone mode takes its policy over xDS from the in-process control
    // plane: one NPHDS and one NPDS update, both ACKed.
    assert_eq!(
        d.pc.metric("portcullis_policy_updates_total{result=\"accepted\"}"),
        2.0
    );
    for t in ["cilium.NetworkPolicy", "cilium.NetworkPolicyHosts"] {
        let labels = format!("{{type_url=\"type.googleapis.com/{t}\"}}");
        assert_eq!(
            d.pc.metric(&format!("portcullis_xds_updates_accepted_total{labels}")),
            1.0
        );
        assert_eq!(
            d.pc.metric(&format!("portcullis_xds_connected{labels}")),
            1.0
        );
    }
    let xds = dump["xds"].as_array().unwrap();
    // NPDS and NPHDS carry the policy; SDS, LDS and CDS are subscribed too
    // but standalone mode sends nothing on them.
    let policy_streams: Vec<_> = xds
        .iter()
        .filter(|s| s["type_url"].as_str().unwrap().contains("cilium."))
        .collect();
    assert_eq!(policy_streams.len(), 2, "{xds:?}");
    assert!(
        policy_streams
            .iter()
            .all(|s| s["connected"] == true && s["version"] == "1"),
        "{xds:?}"
    );
}
