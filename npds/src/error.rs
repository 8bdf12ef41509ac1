use std::fmt;

/// Why a set of policy resources was rejected.
///
/// `Display` reads `NetworkPolicy "<resource>": <field path>: <reason>`, so
/// that a NACK's `error_detail` and a log line point at the exact rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// The resource kind: `NetworkPolicy` or `NetworkPolicyHosts`.
    pub kind: &'static str,
    /// The resource name (endpoint id, or identity number).
    pub resource: String,
    /// Dotted path of the offending field, proto field names.
    pub field: String,
    pub reason: String,
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
        reason: impl Into<String>,
    ) -> Self {
        PolicyError {
            kind: "NetworkPolicy",
            resource: resource.to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn hosts(
        resource: &str,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        PolicyError {
            kind: "NetworkPolicyHosts",
            resource: resource.to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}
