//! Shared setup: an nginx origin that echoes what it received, behind
//! Portcullis with a policy that allows GET on `/public/.*` for anyone.
#![allow(dead_code)]

use portcullis_tests::*;

pub struct Echo {
    pub pc: Portcullis,
    pub nginx: Nginx,
    pub port: u16,
    pub origin: u16,
}

/// GET `/public/.*` and POST `/upload`, for anyone, on the origin's port.
pub fn echo_policy(origin: u16) -> String {
    Cnp::new("echo", "echo")
        .allow_http(
            ANYONE,
            origin,
            &[http_rule("GET", "/public/.*"), http_rule("POST", "/upload")],
        )
        .to_string()
}

/// Behind a ready Portcullis enforcing `policy(origin port)`.
pub fn echo_with(policy: impl FnOnce(u16) -> String) -> Echo {
    let e = echo_unready(policy);
    e.pc.wait_ready();
    e
}

/// Like `echo_with`, without waiting for `/ready`.
pub fn echo_unready(policy: impl FnOnce(u16) -> String) -> Echo {
    let origin = free_port();
    let nginx = Nginx::start(
        &echo_server(
            format_args!("{ORIGIN_IP}:{origin}"),
            &format!(
                r#"location = /upload {{ proxy_pass http://{ORIGIN_IP}:{origin}/echo-length; }}
                   location = /echo-length {{ return 200 "length=$http_content_length\n"; }}"#
            ),
        ),
        &[origin],
    );
    let port = free_port();
    let pc = Portcullis::start(&Config::front(port, origin, "echo").policy(policy(origin)));
    Echo {
        pc,
        nginx,
        port,
        origin,
    }
}

pub fn echo() -> Echo {
    echo_with(echo_policy)
}

impl Echo {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}
