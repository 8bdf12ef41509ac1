//! Which parser serves a connection: the listener's `protocol` and the L7
//! kind of the rules on the connection's port, as Cilium redirects a port to
//! the proxy that parses its rules' protocol.
//!
//! A listener never relays past rules it cannot judge: when no parser it
//! runs enforces the port's rules (HTTP rules on a `tcp` listener, Kafka
//! rules on an `http` one, `l7_rules` for a protocol Portcullis has no
//! parser for), the connection is refused with the reason. All rules on a
//! port share one L7 kind, so the decision is the port's.

use npds::{L7Kind, PortRules};

use crate::config::ListenerProtocol;

/// What runs on an admitted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parser {
    Http,
    Kafka,
    /// Bytes both ways, judged at L3/L4 only.
    Relay,
}

impl Parser {
    pub fn as_str(self) -> &'static str {
        match self {
            Parser::Http => "HTTP",
            Parser::Kafka => "Kafka",
            Parser::Relay => "relay",
        }
    }

    /// Whether a connection already running this parser judges every
    /// request by rules of `kind`. A relay judges nothing beyond L3/L4; an
    /// HTTP or Kafka session on a port without L7 rules allows all requests,
    /// as the relay would, so it may run on.
    pub fn enforces(self, kind: L7Kind) -> bool {
        matches!(
            (self, kind),
            (_, L7Kind::None) | (Parser::Http, L7Kind::Http) | (Parser::Kafka, L7Kind::Kafka)
        )
    }
}

/// Why a listener cannot serve a port: the connection is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unenforceable {
    #[error("no parser for L7 protocol {l7_proto:?}")]
    NoParser { l7_proto: String },
    #[error("{kind} rules cannot be enforced by a {listener} listener")]
    WrongListener {
        kind: &'static str,
        listener: &'static str,
    },
    #[error("a dns listener serves DNS only")]
    Dns,
}

/// The parser `protocol` runs for a port with `rules`.
pub fn choose(protocol: ListenerProtocol, rules: &PortRules) -> Result<Parser, Unenforceable> {
    use ListenerProtocol as P;
    let wrong = |kind| {
        Err(Unenforceable::WrongListener {
            kind,
            listener: protocol.as_str(),
        })
    };
    match (protocol, rules.l7_kind()) {
        (P::Dns, _) => Err(Unenforceable::Dns),
        (_, L7Kind::Generic) => Err(Unenforceable::NoParser {
            l7_proto: rules
                .l7_rule()
                .map_or(String::new(), |r| r.l7.protocol_name().to_string()),
        }),
        (P::Auto, L7Kind::None) | (P::Tcp, L7Kind::None) => Ok(Parser::Relay),
        (P::Auto | P::Http, L7Kind::Http) | (P::Http, L7Kind::None) => Ok(Parser::Http),
        (P::Auto | P::Kafka | P::Tcp, L7Kind::Kafka) | (P::Kafka, L7Kind::None) => {
            Ok(Parser::Kafka)
        }
        (P::Kafka | P::Tcp, L7Kind::Http) => wrong("HTTP"),
        (P::Http, L7Kind::Kafka) => wrong("Kafka"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use npds::proto::{
        port_network_policy_rule::L7, HttpNetworkPolicyRule, HttpNetworkPolicyRules,
        KafkaNetworkPolicyRule, KafkaNetworkPolicyRules, L7NetworkPolicyRules, NetworkPolicy,
        PortNetworkPolicy, PortNetworkPolicyRule,
    };
    use npds::{Direction, L7Kind, PolicySnapshot};
    use ListenerProtocol as P;

    /// A snapshot whose port 80 carries one rule with `l7` (and `l7_proto`).
    fn port_with(l7: Option<L7>, l7_proto: &str) -> PolicySnapshot {
        let np = NetworkPolicy {
            endpoint_ips: vec!["10.0.0.1".into()],
            endpoint_id: 1,
            ingress_per_port_policies: vec![PortNetworkPolicy {
                port: 80,
                rules: vec![PortNetworkPolicyRule {
                    name: "r".into(),
                    l7_proto: l7_proto.into(),
                    l7,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        PolicySnapshot::compile("1", vec![np], None).unwrap()
    }

    #[test]
    fn the_listener_and_the_port_pick_the_parser_or_refuse() {
        let none = port_with(None, "");
        let http = port_with(
            Some(L7::HttpRules(HttpNetworkPolicyRules {
                http_rules: vec![HttpNetworkPolicyRule::default()],
            })),
            "",
        );
        let kafka = port_with(
            Some(L7::KafkaRules(KafkaNetworkPolicyRules {
                kafka_rules: vec![KafkaNetworkPolicyRule {
                    topic: "t".into(),
                    ..Default::default()
                }],
            })),
            "kafka",
        );
        let r2d2 = port_with(Some(L7::L7Rules(L7NetworkPolicyRules::default())), "r2d2");
        let no_parser = Unenforceable::NoParser {
            l7_proto: "r2d2".into(),
        };
        let wrong = |kind, listener| Unenforceable::WrongListener { kind, listener };
        let table: &[(
            ListenerProtocol,
            &PolicySnapshot,
            Result<Parser, Unenforceable>,
        )] = &[
            (P::Auto, &none, Ok(Parser::Relay)),
            (P::Auto, &http, Ok(Parser::Http)),
            (P::Auto, &kafka, Ok(Parser::Kafka)),
            (P::Auto, &r2d2, Err(no_parser.clone())),
            (P::Http, &none, Ok(Parser::Http)),
            (P::Http, &http, Ok(Parser::Http)),
            (P::Http, &kafka, Err(wrong("Kafka", "http"))),
            (P::Http, &r2d2, Err(no_parser.clone())),
            (P::Kafka, &none, Ok(Parser::Kafka)),
            (P::Kafka, &http, Err(wrong("HTTP", "kafka"))),
            (P::Kafka, &kafka, Ok(Parser::Kafka)),
            (P::Kafka, &r2d2, Err(no_parser.clone())),
            (P::Tcp, &none, Ok(Parser::Relay)),
            (P::Tcp, &http, Err(wrong("HTTP", "tcp"))),
            (P::Tcp, &kafka, Ok(Parser::Kafka)),
            (P::Tcp, &r2d2, Err(no_parser.clone())),
            (P::Dns, &none, Err(Unenforceable::Dns)),
        ];
        for (protocol, snap, want) in table {
            let ep = snap.endpoint("10.0.0.1".parse().unwrap()).unwrap();
            let port = ep
                .port(Direction::Ingress, npds::proto::Protocol::Tcp, 80)
                .unwrap();
            assert_eq!(
                &choose(*protocol, port),
                want,
                "{protocol:?} on {:?}",
                port.l7_kind()
            );
        }
        for (parser, kinds) in [
            (Parser::Http, [true, true, false, false]),
            (Parser::Kafka, [true, false, true, false]),
            (Parser::Relay, [true, false, false, false]),
        ] {
            let got = [L7Kind::None, L7Kind::Http, L7Kind::Kafka, L7Kind::Generic]
                .map(|k| parser.enforces(k));
            assert_eq!(got, kinds, "{parser:?}");
        }
        assert_eq!(no_parser.to_string(), "no parser for L7 protocol \"r2d2\"");
        assert_eq!(
            wrong("HTTP", "tcp").to_string(),
            "HTTP rules cannot be enforced by a tcp listener"
        );
    }
}
