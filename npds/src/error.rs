use std::fmt;

/// What is wrong with the field a [`PolicyError`] names: a statement of
/// this crate's, or the typed error of the rule compiler that refused it
/// (kept whole, as the error's `source`).
#[derive(Debug, thiserror::Error)]
pub enum Reason {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Http(#[from] l7_http::RuleError),
    #[error(transparent)]
    Kafka(#[from] l7_kafka::RuleError),
    #[error(transparent)]
    ServerName(#[from] crate::SniPatternError),
    #[error(transparent)]
    Address(#[from] crate::identity::AddressError),
}

impl From<String> for Reason {
    fn from(s: String) -> Self {
        Reason::Invalid(s)
    }
}

impl From<&str> for Reason {
    fn from(s: &str) -> Self {
        Reason::Invalid(s.to_string())
    }
}

/// Why a set of policy resources was rejected.
///
/// `Display` reads `NetworkPolicy "<resource>": <field path>: <reason>`, so
/// that a NACK's `error_detail` and a log line point at the exact rule.
#[derive(Debug, thiserror::Error)]
pub struct PolicyError {
    /// The resource kind: `NetworkPolicy` or `NetworkPolicyHosts`.
    pub kind: &'static str,
    /// The resource name (endpoint id, or identity number).
    pub resource: String,
    /// Dotted path of the offending field, proto field names.
    pub field: String,
    /// Boxed: an error travels rarely, and a `Result` should stay small.
    #[source]
    pub reason: Box<Reason>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} \"{}\": {}: {}",
            self.kind, self.resource, self.field, self.reason
        )
    }
}

impl PolicyError {
    pub(crate) fn policy(
        resource: &str,
        field: impl Into<String>,
        reason: impl Into<Reason>,
    ) -> Self {
        PolicyError {
            kind: "NetworkPolicy",
            resource: resource.to_string(),
            field: field.into(),
            reason: Box::new(reason.into()),
        }
    }

    pub(crate) fn hosts(
        resource: &str,
        field: impl Into<String>,
        reason: impl Into<Reason>,
    ) -> Self {
        PolicyError {
            kind: "NetworkPolicyHosts",
            resource: resource.to_string(),
            field: field.into(),
            reason: Box::new(reason.into()),
        }
    }
}
