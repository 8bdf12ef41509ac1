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

pub const ECHO_POLICY: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: echo}
spec:
  endpointSelector: {matchLabels: {app: echo}}
  ingress:
  - fromEntities: [all]
    toPorts:
    - ports: [{port: "{origin}", protocol: TCP}]
      rules:
        http:
        - method: GET
          path: "/public/.*"
        - method: POST
          path: "/upload"
"#;

pub fn echo_with(policy: &str) -> Echo {
    let e = echo_unready(policy);
    e.pc.wait_ready();
    e
}

/// Like `echo_with`, without waiting for `/ready`.
pub fn echo_unready(policy: &str) -> Echo {
    let origin = free_port();
    let nginx = Nginx::start(
        &format!(
            r#"server {{ listen 127.0.0.10:{origin};
                 location / {{ return 200 "$request_method $request_uri\n"; }}
                 location = /upload {{ proxy_pass http://127.0.0.10:{origin}/echo-length; }}
                 location = /echo-length {{ return 200 "length=$http_content_length\n"; }} }}"#
        ),
        &[origin],
    );
    let port = free_port();
    let config = format!(
        r#"
admin: {{admin}}
listeners:
  - {{port: {port}, direction: ingress, upstream: "127.0.0.10:{origin}"}}
endpoints:
  - {{id: 1, ips: [127.0.0.10], labels: {{app: echo}}}}
policies: [policy.yaml]
"#
    );
    let policy = policy.replace("{origin}", &origin.to_string());
    let pc = Portcullis::start(&config, &[("policy.yaml", &policy)]);
    Echo {
        pc,
        nginx,
        port,
        origin,
    }
}

pub fn echo() -> Echo {
    echo_with(ECHO_POLICY)
}

impl Echo {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}
