//! What a test runs Portcullis with: its config file (`Config`, one
//! `Listener` at a time) and the CiliumNetworkPolicy it enforces (`Cnp`),
//! built from their parts rather than copied YAML templates.

use std::fmt::{self, Display, Write as _};

/// Where test origins listen (nginx, the tests' own servers), and so the
/// address of the endpoint they stand for.
pub const ORIGIN_IP: &str = "127.0.0.10";

/// One entry of the config's `listeners:`.
#[derive(Clone, Debug)]
pub struct Listener {
    name: Option<String>,
    address: Option<String>,
    port: u16,
    direction: &'static str,
    protocol: Option<String>,
    upstream: Option<String>,
    transparent: bool,
}

impl Listener {
    pub fn ingress(port: u16) -> Listener {
        Listener::new(port, "ingress")
    }

    pub fn egress(port: u16) -> Listener {
        Listener::new(port, "egress")
    }

    fn new(port: u16, direction: &'static str) -> Listener {
        Listener {
            name: None,
            address: None,
            port,
            direction,
            protocol: None,
            upstream: None,
            transparent: false,
        }
    }

    /// The fixed destination; without one the original destination is used.
    pub fn upstream(mut self, addr: impl Display) -> Listener {
        self.upstream = Some(addr.to_string());
        self
    }

    /// `tcp`, `http`, `dns`, …; left out, the parser follows the policy.
    pub fn protocol(mut self, protocol: &str) -> Listener {
        self.protocol = Some(protocol.into());
        self
    }

    pub fn name(mut self, name: &str) -> Listener {
        self.name = Some(name.into());
        self
    }

    /// The listening address, 127.0.0.1 when left out.
    pub fn address(mut self, address: &str) -> Listener {
        self.address = Some(address.into());
        self
    }

    pub fn transparent(mut self) -> Listener {
        self.transparent = true;
        self
    }
}

impl Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        if let Some(name) = &self.name {
            write!(f, "name: {name}, ")?;
        }
        if let Some(address) = &self.address {
            write!(f, "address: {address}, ")?;
        }
        write!(f, "port: {}, direction: {}", self.port, self.direction)?;
        if let Some(protocol) = &self.protocol {
            write!(f, ", protocol: {protocol}")?;
        }
        if let Some(upstream) = &self.upstream {
            write!(f, ", upstream: \"{upstream}\"")?;
        }
        if self.transparent {
            f.write_str(", transparent: true")?;
        }
        f.write_str("}")
    }
}

/// A Portcullis config file and the policy file it lists. The admin
/// address is left as `{admin}` for the harness to fill in.
#[derive(Clone, Debug, Default)]
pub struct Config {
    verbatim: Option<String>,
    listeners: Vec<Listener>,
    endpoints: Vec<String>,
    identities: Vec<String>,
    policy: Option<String>,
    settings: String,
}

impl Config {
    pub fn new() -> Config {
        Config::default()
    }

    /// A config file used as it is (a shipped example, say); `policy` then
    /// only writes the file the text lists.
    pub fn verbatim(yaml: &str) -> Config {
        Config {
            verbatim: Some(yaml.into()),
            ..Config::default()
        }
    }

    /// The usual shape: an ingress listener on `port` in front of the origin
    /// at `ORIGIN_IP:origin`, which is endpoint 1, labelled `app: <app>`.
    pub fn front(port: u16, origin: u16, app: &str) -> Config {
        Config::new()
            .listener(Listener::ingress(port).upstream(format_args!("{ORIGIN_IP}:{origin}")))
            .endpoint(1, ORIGIN_IP, &format!("app: {app}"))
    }

    pub fn listener(mut self, listener: Listener) -> Config {
        self.listeners.push(listener);
        self
    }

    /// A local endpoint; `labels` is the inside of a YAML flow mapping
    /// (`app: web, tier: db`).
    pub fn endpoint(self, id: u32, ip: &str, labels: &str) -> Config {
        self.endpoint_entry(format!("id: {id}, ips: [{ip}], labels: {{{labels}}}"))
    }

    /// `endpoint`, with the security identity given rather than allocated.
    pub fn endpoint_as(self, id: u32, ip: &str, labels: &str, identity: u32) -> Config {
        self.endpoint_entry(format!(
            "id: {id}, ips: [{ip}], labels: {{{labels}}}, identity: {identity}"
        ))
    }

    fn endpoint_entry(mut self, fields: String) -> Config {
        self.endpoints.push(format!("{{{fields}}}"));
        self
    }

    /// A remote identity: the peers in `cidr`, labelled `labels` (as for
    /// `endpoint`).
    pub fn identity(mut self, id: u32, labels: &str, cidr: &str) -> Config {
        self.identities.push(format!(
            "{{id: {id}, labels: {{{labels}}}, cidrs: [\"{cidr}\"]}}"
        ));
        self
    }

    /// `identity`, in a namespace other than `default`.
    pub fn identity_in(mut self, namespace: &str, id: u32, labels: &str, cidr: &str) -> Config {
        self.identities.push(format!(
            "{{id: {id}, namespace: {namespace}, labels: {{{labels}}}, cidrs: [\"{cidr}\"]}}"
        ));
        self
    }

    /// The policy, written to `policy.yaml` and listed under `policies:`.
    pub fn policy(mut self, yaml: impl ToString) -> Config {
        self.policy = Some(yaml.to_string());
        self
    }

    /// Top-level settings, as YAML lines (`kafka: {maxFrameBytes: 1024}`).
    pub fn set(mut self, yaml: impl Display) -> Config {
        let _ = writeln!(self.settings, "{yaml}");
        self
    }

    /// The config file's text.
    pub fn yaml(&self) -> String {
        if let Some(text) = &self.verbatim {
            return text.clone();
        }
        let mut out = String::from("admin: \"{admin}\"\n");
        let listeners: Vec<String> = self.listeners.iter().map(Listener::to_string).collect();
        for (section, entries) in [
            ("listeners", &listeners),
            ("endpoints", &self.endpoints),
            ("identities", &self.identities),
        ] {
            if !entries.is_empty() {
                let _ = writeln!(out, "{section}:");
                for e in entries {
                    let _ = writeln!(out, "  - {e}");
                }
            }
        }
        if self.policy.is_some() {
            out += "policies: [policy.yaml]\n";
        }
        out + &self.settings
    }

    /// The files beside the config: (name, content).
    pub fn files(&self) -> Vec<(&str, &str)> {
        self.policy
            .iter()
            .map(|p| ("policy.yaml", p.as_str()))
            .collect()
    }
}

/// Anyone: `fromEntities: [all]`.
pub const ANYONE: &str = "fromEntities: [all]";

/// The endpoints labelled `app: <app>`, as an ingress rule's peers.
pub fn from_app(app: &str) -> String {
    format!("fromEndpoints: [{{matchLabels: {{app: {app}}}}}]")
}

/// An HTTP rule allowing `method` on the paths `path` (a regex) matches.
pub fn http_rule(method: &str, path: &str) -> String {
    format!("{{method: {method}, path: \"{path}\"}}")
}

/// A CiliumNetworkPolicy for the endpoints labelled `app: <app>`, built one
/// ingress rule at a time; its text is its `Display`.
#[derive(Clone, Debug)]
pub struct Cnp {
    name: String,
    app: String,
    ingress: String,
}

impl Cnp {
    pub fn new(name: &str, app: &str) -> Cnp {
        Cnp {
            name: name.into(),
            app: app.into(),
            ingress: String::new(),
        }
    }

    /// `from` (`ANYONE`, `from_app(…)`, any `from…:` line) may connect to
    /// every port.
    pub fn allow(mut self, from: &str) -> Cnp {
        let _ = writeln!(self.ingress, "  - {from}");
        self
    }

    /// `from` may connect to TCP `port`, with no L7 rules.
    pub fn allow_port(self, from: &str, port: impl Display) -> Cnp {
        self.allow(from).on_port(port)
    }

    /// `from` may send to TCP `port` only the HTTP requests `rules` (YAML
    /// flow mappings, as `http_rule` makes) allow.
    pub fn allow_http(self, from: &str, port: impl Display, rules: &[impl AsRef<str>]) -> Cnp {
        let mut cnp = self.allow_port(from, port);
        cnp.ingress += "      rules:\n        http:\n";
        for rule in rules {
            let _ = writeln!(cnp.ingress, "        - {}", rule.as_ref());
        }
        cnp
    }

    fn on_port(mut self, port: impl Display) -> Cnp {
        let _ = write!(
            self.ingress,
            "    toPorts:\n    - ports: [{{port: \"{port}\", protocol: TCP}}]\n"
        );
        self
    }
}

impl Display for Cnp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: {}}}\n\
             spec:\n  endpointSelector: {{matchLabels: {{app: {}}}}}\n  ingress:\n{}",
            self.name, self.app, self.ingress
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_lists_what_was_added_and_nothing_else() {
        let c = Config::front(8080, 9090, "echo")
            .identity_in("kube-system", 100, "k8s-app: kube-dns", "127.0.0.91/32")
            .policy("p")
            .set("maxConnections: 2");
        assert_eq!(
            c.yaml(),
            "admin: \"{admin}\"\n\
             listeners:\n  - {port: 8080, direction: ingress, upstream: \"127.0.0.10:9090\"}\n\
             endpoints:\n  - {id: 1, ips: [127.0.0.10], labels: {app: echo}}\n\
             identities:\n  - {id: 100, namespace: kube-system, labels: {k8s-app: kube-dns}, cidrs: [\"127.0.0.91/32\"]}\n\
             policies: [policy.yaml]\n\
             maxConnections: 2\n"
        );
        assert_eq!(c.files(), [("policy.yaml", "p")]);
        let bare = Config::new().listener(
            Listener::egress(53)
                .name("dns")
                .address("127.0.0.92")
                .protocol("dns")
                .transparent(),
        );
        assert_eq!(
            bare.yaml(),
            "admin: \"{admin}\"\nlisteners:\n  - {name: dns, address: 127.0.0.92, port: 53, direction: egress, protocol: dns, transparent: true}\n"
        );
        assert!(bare.files().is_empty());
    }

    #[test]
    fn a_cnp_has_one_ingress_rule_per_allow() {
        let cnp = Cnp::new("web", "web")
            .allow_http(ANYONE, 80, &[http_rule("GET", "/public/.*")])
            .allow_port(&from_app("client"), "{origin}")
            .allow("fromEntities: [world]");
        assert_eq!(
            cnp.to_string(),
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: web}\nspec:\n\
             \x20 endpointSelector: {matchLabels: {app: web}}\n  ingress:\n\
             \x20 - fromEntities: [all]\n    toPorts:\n    - ports: [{port: \"80\", protocol: TCP}]\n\
             \x20     rules:\n        http:\n        - {method: GET, path: \"/public/.*\"}\n\
             \x20 - fromEndpoints: [{matchLabels: {app: client}}]\n    toPorts:\n    - ports: [{port: \"{origin}\", protocol: TCP}]\n\
             \x20 - fromEntities: [world]\n"
        );
    }
}
