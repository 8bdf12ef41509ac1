//! DNS policy as the proxy holds it: the decide core's
//! [`CompiledDnsPolicy`](l7_dns::CompiledDnsPolicy), with npds's longest-prefix
//! [`IdentityTable`] giving server addresses their identities, as it does
//! for connections. The same compiled form serves both sources: the
//! agent's `FQDNData` stream, and in standalone mode the `rules.dns` of the
//! policy files, which the control plane turns into the same `PolicyState`
//! message.

use std::net::IpAddr;

use ipnet::IpNet;
use l7_dns::PrefixIdentities;
use npds::proto::NetworkPolicyHosts;
use npds::IdentityTable;

/// npds's identity table, built from a `PolicyState`'s prefixes.
#[derive(Debug, Default)]
pub struct ServerIdentities(IdentityTable);

impl PrefixIdentities for ServerIdentities {
    type Error = npds::PolicyError;

    fn compile(by_identity: &[(u32, Vec<IpNet>)]) -> Result<Self, Self::Error> {
        let hosts: Vec<NetworkPolicyHosts> = by_identity
            .iter()
            .map(|(id, nets)| NetworkPolicyHosts {
                policy: u64::from(*id),
                host_addresses: nets.iter().map(IpNet::to_string).collect(),
            })
            .collect();
        IdentityTable::compile(&hosts).map(ServerIdentities)
    }

    fn lookup(&self, ip: IpAddr) -> u32 {
        self.0.lookup(ip)
    }
}
