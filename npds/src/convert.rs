//! Proto → domain conversions for the L7 crates, which know nothing of xDS.

use l7_http::{HeaderMatchSpec, HeaderValueSource, HttpRuleSpec, MatchAction, MismatchAction};

use crate::proto::{header_match, HeaderMatch, HttpNetworkPolicyRule};

/// The HTTP compiler's input for one wire rule. Unknown enum values from a
/// newer agent fall back to the fail-closed default of each field; a secret
/// name wins over an inline value. The translator checks its output with
/// this same conversion, so what it emits is what the compiler sees.
/// The Kafka rule compiler's view of a wire `KafkaNetworkPolicyRule`.
pub fn kafka_rule_spec(rule: &crate::proto::KafkaNetworkPolicyRule) -> l7_kafka::KafkaRuleSpec {
    l7_kafka::KafkaRuleSpec {
        api_version: rule.api_version,
        api_keys: rule.api_keys.clone(),
        client_id: rule.client_id.clone(),
        topic: rule.topic.clone(),
    }
}

pub fn http_rule_spec(rule: &HttpNetworkPolicyRule) -> HttpRuleSpec {
    HttpRuleSpec {
        headers: rule.headers.clone(),
        header_matches: rule.header_matches.iter().map(header_match_spec).collect(),
    }
}

fn header_match_spec(m: &HeaderMatch) -> HeaderMatchSpec {
    use header_match::{MatchAction as PM, MismatchAction as PMM};
    // Unknown enum values from a newer agent fall back to the fail-closed
    // default of each field.
    let match_action = match PM::try_from(m.match_action).unwrap_or(PM::ContinueOnMatch) {
        PM::ContinueOnMatch => MatchAction::Continue,
        PM::FailOnMatch => MatchAction::Fail,
        PM::DeleteOnMatch => MatchAction::Delete,
    };
    let mismatch_action = match PMM::try_from(m.mismatch_action).unwrap_or(PMM::FailOnMismatch) {
        PMM::FailOnMismatch => MismatchAction::Fail,
        PMM::ContinueOnMismatch => MismatchAction::Continue,
        PMM::AddOnMismatch => MismatchAction::Add,
        PMM::DeleteOnMismatch => MismatchAction::Delete,
        PMM::ReplaceOnMismatch => MismatchAction::Replace,
    };
    let value = if m.value_sds_secret.is_empty() {
        HeaderValueSource::Inline(m.value.clone())
    } else {
        HeaderValueSource::Secret(m.value_sds_secret.clone())
    };
    HeaderMatchSpec {
        name: m.name.clone(),
        value,
        match_action,
        mismatch_action,
    }
}
