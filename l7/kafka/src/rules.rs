//! Cilium's Kafka rules (`KafkaNetworkPolicyRule` on the wire, `rules.kafka`
//! in a CNP), validated and matched as cilium's proxylib did.
//!
//! A request is allowed by a rule list when a rule matches its API key,
//! version and client ID and either names no topic or the request names no
//! topic; a request naming topics is allowed only once every one of its
//! topics is covered by some matching rule (proxylib's `MatchesRule`). A
//! topic the proxy knows only by an unresolved topic ID can be covered only
//! by a rule without a topic.

use std::collections::BTreeSet;

pub use crate::api::{role_api_keys, CONSUME_KEYS, PRODUCE_KEYS};

/// The longest topic name Kafka accepts.
pub const MAX_TOPIC_LEN: usize = 249;

fn legal_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What is wrong with one field of a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidField {
    #[error("at least one rule is required")]
    NoRules,
    #[error("{0} is not an int16")]
    ApiVersion(i32),
    #[error("{0} is not an API key")]
    ApiKey(i32),
    #[error("topic is {0} characters long; Kafka allows at most {MAX_TOPIC_LEN}")]
    TopicTooLong(usize),
    #[error("topic {0:?} has characters outside [a-zA-Z0-9._-]")]
    TopicChars(String),
    #[error("clientID {0:?} has characters outside [a-zA-Z0-9._-]")]
    ClientIdChars(String),
}

/// A topic name as a rule may name it.
pub fn validate_topic(topic: &str) -> Result<(), InvalidField> {
    if topic.len() > MAX_TOPIC_LEN {
        return Err(InvalidField::TopicTooLong(topic.len()));
    }
    if !legal_chars(topic) {
        return Err(InvalidField::TopicChars(topic.into()));
    }
    Ok(())
}

/// A client ID as a rule may name it.
pub fn validate_client_id(client_id: &str) -> Result<(), InvalidField> {
    if !legal_chars(client_id) {
        return Err(InvalidField::ClientIdChars(client_id.into()));
    }
    Ok(())
}

/// One rule as the wire carries it (`KafkaNetworkPolicyRule`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaRuleSpec {
    /// Negative: any version.
    pub api_version: i32,
    /// Empty: any key.
    pub api_keys: Vec<i32>,
    /// Empty: any client.
    pub client_id: String,
    /// Empty: any topic.
    pub topic: String,
}

#[derive(Debug, thiserror::Error)]
#[error("kafka_rules[{index}].{field}: {reason}")]
pub struct RuleError {
    pub index: usize,
    pub field: &'static str,
    pub reason: InvalidField,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// Sorted; `None` = any key.
    api_keys: Option<Box<[i16]>>,
    api_version: Option<i16>,
    client_id: Option<Box<str>>,
    topic: Option<Box<str>>,
}

impl Rule {
    fn matches_request(&self, r: &RequestView<'_>) -> bool {
        self.api_keys
            .as_ref()
            .is_none_or(|k| k.binary_search(&r.api_key).is_ok())
            && self.api_version.is_none_or(|v| v == r.api_version)
            && self.client_id.as_deref().is_none_or(|c| c == r.client_id)
    }
}

/// What a rule looks at in a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub api_key: i16,
    pub api_version: i16,
    pub client_id: &'a str,
    /// The topics named; `None` for a topic ID the proxy cannot resolve.
    pub topics: &'a [Option<&'a str>],
}

/// One rule list (the `kafka_rules` of one `PortNetworkPolicyRule`), compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaRules {
    rules: Vec<Rule>,
}

impl KafkaRules {
    pub fn compile(specs: &[KafkaRuleSpec]) -> Result<Self, RuleError> {
        if specs.is_empty() {
            return Err(RuleError {
                index: 0,
                field: "kafka_rules",
                reason: InvalidField::NoRules,
            });
        }
        let mut rules = Vec::with_capacity(specs.len());
        for (index, s) in specs.iter().enumerate() {
            let err = |field, reason| RuleError {
                index,
                field,
                reason,
            };
            let api_version = if s.api_version < 0 {
                None
            } else {
                Some(
                    i16::try_from(s.api_version)
                        .map_err(|_| err("api_version", InvalidField::ApiVersion(s.api_version)))?,
                )
            };
            let mut keys = Vec::with_capacity(s.api_keys.len());
            for k in &s.api_keys {
                let k = i16::try_from(*k)
                    .ok()
                    .filter(|k| *k >= 0)
                    .ok_or_else(|| err("api_keys", InvalidField::ApiKey(*k)))?;
                keys.push(k);
            }
            keys.sort_unstable();
            keys.dedup();
            validate_client_id(&s.client_id).map_err(|e| err("client_id", e))?;
            validate_topic(&s.topic).map_err(|e| err("topic", e))?;
            rules.push(Rule {
                api_keys: (!keys.is_empty()).then(|| keys.into_boxed_slice()),
                api_version,
                client_id: (!s.client_id.is_empty()).then(|| s.client_id.as_str().into()),
                topic: (!s.topic.is_empty()).then(|| s.topic.as_str().into()),
            });
        }
        Ok(KafkaRules { rules })
    }

    /// Whether the rule list allows the request.
    pub fn allows(&self, req: &RequestView<'_>) -> bool {
        let mut uncovered: Option<BTreeSet<Option<&str>>> = None;
        for rule in &self.rules {
            if !rule.matches_request(req) {
                continue;
            }
            let Some(topic) = rule.topic.as_deref() else {
                return true;
            };
            if req.topics.is_empty() {
                // Keys without topics (and requests naming none) ignore `topic`.
                return true;
            }
            let left = uncovered.get_or_insert_with(|| req.topics.iter().copied().collect());
            if left.remove(&Some(topic)) && left.is_empty() {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(keys: &[i16], version: i32, client: &str, topic: &str) -> KafkaRuleSpec {
        KafkaRuleSpec {
            api_version: version,
            api_keys: keys.iter().map(|k| *k as i32).collect(),
            client_id: client.into(),
            topic: topic.into(),
        }
    }

    fn view<'a>(
        key: i16,
        version: i16,
        client: &'a str,
        topics: &'a [Option<&'a str>],
    ) -> RequestView<'a> {
        RequestView {
            api_key: key,
            api_version: version,
            client_id: client,
            topics,
        }
    }

    #[test]
    fn roles_and_topics() {
        // Cilium's Kafka demo: outposts consume empire-announce only.
        let outpost =
            KafkaRules::compile(&[rule(CONSUME_KEYS, -1, "", "empire-announce")]).unwrap();
        assert!(outpost.allows(&view(1, 12, "c", &[Some("empire-announce")])));
        assert!(!outpost.allows(&view(1, 12, "c", &[Some("deathstar-plans")])));
        assert!(
            !outpost.allows(&view(0, 9, "c", &[Some("empire-announce")])),
            "produce is not consume"
        );
        // Keys without topics ignore `topic`.
        assert!(outpost.allows(&view(10, 4, "c", &[])));
        assert!(outpost.allows(&view(18, 3, "c", &[])));
        assert!(
            !outpost.allows(&view(19, 5, "c", &[])),
            "CreateTopics is not in consume"
        );
        // Every topic must be covered.
        assert!(!outpost.allows(&view(
            3,
            12,
            "c",
            &[Some("empire-announce"), Some("deathstar-plans")]
        )));
        let hq = KafkaRules::compile(&[
            rule(PRODUCE_KEYS, -1, "", "empire-announce"),
            rule(PRODUCE_KEYS, -1, "", "deathstar-plans"),
        ])
        .unwrap();
        assert!(hq.allows(&view(
            3,
            12,
            "c",
            &[
                Some("empire-announce"),
                Some("deathstar-plans"),
                Some("empire-announce")
            ]
        )));
        assert!(!hq.allows(&view(3, 12, "c", &[Some("empire-announce"), Some("other")])));
        // An unresolved topic ID is covered only by a topic-less rule.
        assert!(!hq.allows(&view(0, 13, "c", &[None])));
        let any = KafkaRules::compile(&[rule(&[0], -1, "", "")]).unwrap();
        assert!(any.allows(&view(0, 13, "c", &[None, Some("x")])));
    }

    #[test]
    fn version_and_client() {
        let r = KafkaRules::compile(&[rule(&[], 3, "tiefighter", "")]).unwrap();
        assert!(r.allows(&view(42, 3, "tiefighter", &[])));
        assert!(!r.allows(&view(42, 4, "tiefighter", &[])));
        assert!(!r.allows(&view(42, 3, "xwing", &[])));
        let zero = KafkaRules::compile(&[rule(&[], 0, "", "")]).unwrap();
        assert!(zero.allows(&view(1, 0, "", &[])));
        assert!(
            !zero.allows(&view(1, 1, "", &[])),
            "0 is version 0, not any"
        );
    }

    #[test]
    fn invalid_rules_name_the_field() {
        let e = KafkaRules::compile(&[rule(&[], -1, "", &"t".repeat(250))]).unwrap_err();
        assert_eq!((e.index, e.field), (0, "topic"));
        let e =
            KafkaRules::compile(&[rule(&[], -1, "", ""), rule(&[], -1, "", "a/b")]).unwrap_err();
        assert_eq!((e.index, e.field), (1, "topic"));
        let e = KafkaRules::compile(&[rule(&[], -1, "a b", "")]).unwrap_err();
        assert_eq!(e.field, "client_id");
        let e = KafkaRules::compile(&[rule(&[], 70000, "", "")]).unwrap_err();
        assert_eq!(e.field, "api_version");
        let e = KafkaRules::compile(&[KafkaRuleSpec {
            api_keys: vec![-3],
            ..Default::default()
        }])
        .unwrap_err();
        assert_eq!(e.field, "api_keys");
        assert!(KafkaRules::compile(&[]).is_err());
        assert!(KafkaRules::compile(&[rule(&[], -1, "", &"t".repeat(249))]).is_ok());
    }

    #[test]
    fn invalid_fields_keep_their_messages() {
        let e = KafkaRules::compile(&[rule(&[], 70000, "", "")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "kafka_rules[0].api_version: 70000 is not an int16"
        );
        assert_eq!(
            validate_topic(&"t".repeat(250)).unwrap_err().to_string(),
            "topic is 250 characters long; Kafka allows at most 249"
        );
        assert_eq!(
            validate_client_id("a b").unwrap_err().to_string(),
            "clientID \"a b\" has characters outside [a-zA-Z0-9._-]"
        );
    }
}
