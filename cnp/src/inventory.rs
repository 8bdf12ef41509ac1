//! The inventory the translator works against: the local endpoints that
//! policy protects and the remote identities they talk to. These types are
//! embedded directly in the proxy's standalone config (`docs/config.md`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use crate::error::{join, Fault};
use crate::ports::is_service_name;
use crate::selector::NAMESPACE_LABEL;

fn default_namespace() -> String {
    "default".to_string()
}

/// Everything the policy is evaluated against.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inventory {
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    #[serde(default)]
    pub identities: Vec<Identity>,
}

/// A local endpoint (pod) whose traffic the proxy enforces.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoint {
    /// Endpoint id, as the agent numbers endpoints.
    pub id: u64,
    /// The endpoint's addresses (at least one).
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Pod labels (`k8s:` source), without the namespace label.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Security identity; allocated from namespace and labels when absent.
    #[serde(default)]
    pub identity: Option<u32>,
    /// Container port names, for `toPorts.ports.port` given by name.
    #[serde(default)]
    pub named_ports: BTreeMap<String, u16>,
}

/// A remote security identity (a pod elsewhere in the cluster), selected
/// by label selectors only; its `cidrs` are where its traffic comes from.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Identity {
    pub id: u32,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default)]
    pub cidrs: Vec<IpNet>,
}

/// The last of the agent's reserved identities (host=1 … world-ipv6=10).
pub(crate) const LAST_RESERVED: u32 = 10;

impl Endpoint {
    /// The container port with this name (names compare case-insensitively,
    /// as the agent lower-cases them).
    pub(crate) fn named_port(&self, name: &str) -> Option<u16> {
        self.named_ports
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, p)| *p)
    }
}

pub(crate) fn check_id(id: u32, path: &str) -> Result<(), Fault> {
    if id == 0 || id <= LAST_RESERVED {
        return Err(Fault::invalid(
            path,
            format!(
                "identity {id} is reserved (1-{LAST_RESERVED} are the agent's reserved identities)"
            ),
        ));
    }
    if id >= 1 << 24 {
        return Err(Fault::invalid(
            path,
            format!(
                "identity {id} is in the local (CIDR) scope, which starts at {}",
                1u32 << 24
            ),
        ));
    }
    Ok(())
}

pub(crate) fn check_labels(
    labels: &BTreeMap<String, String>,
    ns: &str,
    path: &str,
) -> Result<(), Fault> {
    if ns.is_empty() {
        return Err(Fault::invalid(join(path, "namespace"), "empty namespace"));
    }
    for k in labels.keys() {
        let p = join(&join(path, "labels"), k);
        if k.is_empty() || k.contains(':') {
            return Err(Fault::invalid(p, "label keys must be plain pod label keys"));
        }
        if k == NAMESPACE_LABEL {
            return Err(Fault::invalid(p, "set the namespace with `namespace`"));
        }
    }
    Ok(())
}

pub(crate) fn check_named_ports(ep: &Endpoint, path: &str) -> Result<(), Fault> {
    for (name, port) in &ep.named_ports {
        let p = join(&join(path, "namedPorts"), name);
        if !is_service_name(name) {
            return Err(Fault::invalid(p, "not a port name (IANA service name)"));
        }
        if *port == 0 {
            return Err(Fault::invalid(p, "port 0 is not a port"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserializes_the_documented_config_shape() {
        let inv: Inventory = serde_yaml_ng::from_str(
            "endpoints:\n\
             - id: 3001\n\
             \x20 ips: [127.0.0.10]\n\
             \x20 labels: {org: empire, class: deathstar}\n\
             \x20 identity: 30001\n\
             \x20 namedPorts: {http: 80}\n\
             identities:\n\
             - id: 20002\n\
             \x20 labels: {org: empire, class: tiefighter}\n\
             \x20 cidrs: [127.0.0.2/32]\n",
        )
        .unwrap();
        let ep = &inv.endpoints[0];
        assert_eq!(ep.namespace, "default");
        assert_eq!(ep.identity, Some(30001));
        assert_eq!(ep.named_ports["http"], 80);
        assert_eq!(inv.identities[0].cidrs[0].to_string(), "127.0.0.2/32");
        assert_eq!(inv.identities[0].namespace, "default");

        let err = serde_yaml_ng::from_str::<Inventory>("endpoints: [{id: 1, ipz: []}]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `ipz`"), "{err}");
    }
}
