//! nginx as a test origin: a config written around the caller's `server`
//! blocks, run in the foreground on the host or inside a network namespace.

use std::fmt::Display;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::{require, wait_for_port, Netns, Proc};

/// An nginx `server` block listening on `listen` that answers every request
/// with its method and URI (`GET /a?b\n`); `more` goes before that location
/// (an `access_log`, other locations).
pub fn echo_server(listen: impl Display, more: &str) -> String {
    format!(
        r#"server {{ listen {listen}; {more} location / {{ return 200 "$request_method $request_uri\n"; }} }}"#
    )
}

/// An nginx origin with the given `server { ... }` blocks.
pub struct Nginx {
    _proc: Proc,
    pub dir: TempDir,
}

impl Nginx {
    /// `ports` are waited for on 127.0.0.10, where test origins listen.
    pub fn start(servers: &str, ports: &[u16]) -> Nginx {
        let (p, dir) = Nginx::spawn(Command::new("nginx"), servers);
        for port in ports {
            wait_for_port(
                SocketAddr::from(([127, 0, 0, 10], *port)),
                Duration::from_secs(10),
            );
        }
        Nginx { _proc: p, dir }
    }

    /// Writes a config around `servers` into a temp dir and runs `cmd`
    /// (nginx, possibly behind `ip netns exec`) on it in the foreground.
    fn spawn(mut cmd: Command, servers: &str) -> (Proc, TempDir) {
        require("nginx");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};\n\
             fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
             keepalive_requests 100000;\n{servers}\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = cmd
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-p")
            .arg(dir.path())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx");
        let p = Proc {
            child,
            name: "nginx".into(),
        };
        (p, dir)
    }

    /// Like `start`, inside `ns`, waiting for each of `listen` there.
    pub fn start_in(ns: &Netns, servers: &str, listen: &[SocketAddr]) -> Nginx {
        let (p, dir) = Nginx::spawn(ns.command("nginx"), servers);
        for addr in listen {
            ns.wait_for_port(*addr, Duration::from_secs(10));
        }
        Nginx { _proc: p, dir }
    }
}
