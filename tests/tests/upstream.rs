//! Upstream connections to an original destination are reused, within one
//! downstream connection and across downstream connections of a worker.

use std::time::Duration;

use portcullis_tests::*;

#[test]
fn upstream_connections_are_reused_across_downstream_connections() {
    let origin = free_port();
    // nginx reports which of its connections served the request.
    let _nginx = Nginx::start(
        &format!(
            r#"server {{ listen 127.0.0.10:{origin};
                 location / {{ return 200 "conn=$connection req=$connection_requests\n"; }} }}"#
        ),
        &[origin],
    );
    let port = free_port();
    // No L7 rules: only an explicit `http` listener parses HTTP here (the
    // default would relay each connection to an upstream of its own).
    let config = Config::new()
        .listener(
            Listener::ingress(port)
                .protocol("http")
                .upstream(format_args!("{ORIGIN_IP}:{origin}")),
        )
        .endpoint(1, ORIGIN_IP, "app: echo")
        .policy(Cnp::new("reuse", "echo").allow(ANYONE));
    // One worker, so that successive client connections land on the same pool.
    let pc = Portcullis::start_with_args(&config, &["--workers", "1"]);
    pc.wait_ready();
    let url = format!("http://127.0.0.1:{port}/");
    let conn_of = |body: &str| body.split_whitespace().next().unwrap().to_string();

    // Two requests on one client connection: one upstream connection.
    let r = curl(&[&url, &url]);
    assert_eq!(r.status, 200, "{r:?}");
    // curl's status marker follows each body; keep nginx's lines only.
    let bodies: Vec<&str> = r
        .body
        .lines()
        .filter_map(|l| l.find("conn=").map(|i| &l[i..]))
        .collect();
    assert_eq!(bodies.len(), 2, "{r:?}");
    assert_eq!(conn_of(bodies[0]), conn_of(bodies[1]));
    assert!(bodies[1].ends_with("req=2"), "{bodies:?}");

    // Once the first client connection is gone (the proxy saw its FIN), a
    // new client connection picks up the same idle upstream connection.
    wait_until(
        "the first connection to close",
        Duration::from_secs(5),
        || pc.metric("portcullis_active_connections") == 0.0,
    );
    let again = curl(&[&url]);
    assert_eq!(again.status, 200);
    assert_eq!(
        conn_of(&again.body),
        conn_of(bodies[0]),
        "{again:?}\n{}",
        pc.log()
    );
    assert!(again.body.trim_end().ends_with("req=3"), "{again:?}");
}

#[test]
fn connections_beyond_the_cap_are_reset_and_counted() {
    let origin = free_port();
    let _nginx = Nginx::start(
        &format!(r#"server {{ listen 127.0.0.10:{origin}; location / {{ return 200 "ok\n"; }} }}"#),
        &[origin],
    );
    let port = free_port();
    let config = Config::front(port, origin, "echo")
        .policy(Cnp::new("cap", "echo").allow(ANYONE))
        .set("maxConnections: 2");
    let pc = Portcullis::start(&config);
    pc.wait_ready();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let local: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let mut a = KeepAlive::connect(local, addr);
    let mut b = KeepAlive::connect(local, addr);
    assert_eq!(a.get("/", &[]).unwrap().0, 200);
    assert_eq!(b.get("/", &[]).unwrap().0, 200);
    // A third connection is over the cap: reset, counted, and the two open
    // ones keep working.
    let mut c = KeepAlive::connect(local, addr);
    assert!(c.get("/", &[]).is_err(), "the third connection was served");
    assert_eq!(pc.metric("portcullis_connections_overflow_total"), 1.0);
    assert_eq!(a.get("/", &[]).unwrap().0, 200);
    // Closing one frees its place.
    drop(b);
    wait_until("a place freed by the close", Duration::from_secs(5), || {
        let mut d = KeepAlive::connect(local, addr);
        matches!(d.get("/", &[]), Ok((200, _)))
    });
}
