//! The crate's one error type. Every message names where the problem is: the
//! file, the document (kind and policy name) and the field path, so that an
//! operator can go straight to the offending line.

use std::fmt;

/// Why a policy document or the inventory was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CnpError {
    /// A document could not be read as YAML at all.
    #[error("{file}: document #{number}: {message}")]
    Yaml {
        file: String,
        /// 1-based position of the document in the file.
        number: usize,
        message: String,
    },
    /// A field of a policy document is wrong, unknown, or not supported yet.
    #[error("{file}: {doc}: {}", At(.path, .problem))]
    Policy {
        file: String,
        /// `CiliumNetworkPolicy "name"`, or `document #N` before the name is known.
        doc: String,
        /// Field path inside the document, e.g. `spec.ingress[0].toPorts[0]`.
        path: String,
        problem: Problem,
    },
    /// The endpoint/identity inventory is inconsistent.
    #[error("inventory: {}", At(.path, .problem))]
    Inventory { path: String, problem: Problem },
}

/// What is wrong at a field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("unknown field")]
    UnknownField,
    #[error("missing required field")]
    Missing,
    /// A construct Cilium accepts but this translator does not implement.
    #[error("not supported yet")]
    Unsupported,
    /// Like [`Problem::Unsupported`], with a reason.
    #[error("not supported yet ({0})")]
    UnsupportedBecause(String),
    #[error("{0}")]
    Invalid(String),
}

/// Renders `path: problem`, or just `problem` at a document's root.
struct At<'a>(&'a str, &'a Problem);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            write!(f, "{}", self.1)
        } else {
            write!(f, "{}: {}", self.0, self.1)
        }
    }
}

/// A problem at a path, before the file and document are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub path: String,
    pub problem: Problem,
}

impl Fault {
    pub fn new(path: impl Into<String>, problem: Problem) -> Self {
        Fault {
            path: path.into(),
            problem,
        }
    }

    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        Fault::new(path, Problem::Invalid(message.into()))
    }

    pub fn unsupported(path: impl Into<String>) -> Self {
        Fault::new(path, Problem::Unsupported)
    }

    pub fn unsupported_because(path: impl Into<String>, why: impl Into<String>) -> Self {
        Fault::new(path, Problem::UnsupportedBecause(why.into()))
    }

    pub fn in_doc(self, doc: &DocRef) -> CnpError {
        CnpError::Policy {
            file: doc.file.clone(),
            doc: doc.label.clone(),
            path: self.path,
            problem: self.problem,
        }
    }

    pub fn in_inventory(self) -> CnpError {
        CnpError::Inventory {
            path: self.path,
            problem: self.problem,
        }
    }
}

/// Where a policy document came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DocRef {
    pub file: String,
    /// `CiliumNetworkPolicy "name"`.
    pub label: String,
}

/// Joins a field path and a key: `join("spec", "ingress")` is `spec.ingress`.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends a list index: `index("spec.ingress", 0)` is `spec.ingress[0]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_document_and_path() {
        let e = CnpError::Policy {
            file: "policies/sw.yaml".into(),
            doc: "CiliumNetworkPolicy \"rule1\"".into(),
            path: "spec.ingress[0].toPorts[0].rules.http[0].methd".into(),
            problem: Problem::UnknownField,
        };
        assert_eq!(
            e.to_string(),
            "policies/sw.yaml: CiliumNetworkPolicy \"rule1\": \
             spec.ingress[0].toPorts[0].rules.http[0].methd: unknown field"
        );
        let root = CnpError::Policy {
            file: "a.yaml".into(),
            doc: "document #2".into(),
            path: String::new(),
            problem: Problem::Invalid("not a mapping".into()),
        };
        assert_eq!(root.to_string(), "a.yaml: document #2: not a mapping");
    }

    #[test]
    fn paths_join() {
        assert_eq!(join("", "spec"), "spec");
        assert_eq!(index(&join("spec", "ingress"), 3), "spec.ingress[3]");
    }
}
