//! Reading policy files: multi-document YAML, each document a
//! `CiliumNetworkPolicy` or `CiliumClusterwideNetworkPolicy` of
//! `apiVersion: cilium.io/v2`, with `spec`, `specs`, or both.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::error::{CnpError, DocRef, Fault};
use crate::rules::{parse_rule, RuleCtx};
use crate::selector::FqdnKey;
use crate::spec::Rule;
use crate::yaml::Node;

pub(crate) const CNP: &str = "CiliumNetworkPolicy";
pub(crate) const CCNP: &str = "CiliumClusterwideNetworkPolicy";

/// One parsed policy document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDoc {
    /// The file the document was read from.
    pub source: PathBuf,
    /// 0-based position of the document in the file (empty documents count).
    pub index: usize,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (default `"default"`) for a CNP; `None` for a CCNP.
    pub namespace: Option<String>,
    pub(crate) rules: Vec<Rule>,
    /// Every CIDR and `except` CIDR the document names (no `/0`).
    pub(crate) cidrs: BTreeSet<IpNet>,
    /// Every `toFQDNs` selector the document names, normalised.
    pub(crate) fqdns: BTreeSet<FqdnKey>,
    pub(crate) doc_ref: DocRef,
}

impl PolicyDoc {
    /// `CiliumNetworkPolicy` or `CiliumClusterwideNetworkPolicy`.
    pub fn kind(&self) -> &'static str {
        if self.namespace.is_some() {
            CNP
        } else {
            CCNP
        }
    }

    /// The reference put in each NPDS rule's `name`: `<namespace>/<name>`
    /// for a CNP, `<name>` for a CCNP.
    pub fn rule_ref(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Parse one YAML file (multi-document; `---` separated; empty documents
/// skipped). Every document must be kind CiliumNetworkPolicy or
/// CiliumClusterwideNetworkPolicy (apiVersion cilium.io/v2); `spec` or
/// `specs` (list) both supported.
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<PolicyDoc>, CnpError> {
    let file = path.display().to_string();
    let mut docs = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(de).map_err(|e| CnpError::Yaml {
            file: file.clone(),
            number: i + 1,
            message: e.to_string(),
        })?;
        if value.is_null() {
            continue;
        }
        docs.push(parse_doc(path, &file, i, &value)?);
    }
    Ok(docs)
}

fn parse_doc(path: &Path, file: &str, i: usize, value: &Value) -> Result<PolicyDoc, CnpError> {
    // Name the document as precisely as possible before strict checking.
    let kind = value.get("kind").and_then(Value::as_str);
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str);
    let label = match (kind, name) {
        (Some(k @ (CNP | CCNP)), Some(n)) => format!("{k} {n:?}"),
        _ => format!("document #{}", i + 1),
    };
    let doc_ref = DocRef {
        file: file.to_string(),
        label,
    };
    parse_doc_fields(path, i, value, doc_ref.clone()).map_err(|f| f.in_doc(&doc_ref))
}

fn parse_doc_fields(
    path: &Path,
    i: usize,
    value: &Value,
    doc_ref: DocRef,
) -> Result<PolicyDoc, Fault> {
    let root = Node::new(value, "");
    let f = root.fields(
        &["apiVersion", "kind", "metadata", "spec", "specs", "status"],
        &[],
    )?;
    let api = f.require("apiVersion")?;
    if api.str()? != "cilium.io/v2" {
        return Err(Fault::invalid(
            api.path,
            format!("expected \"cilium.io/v2\", found {:?}", api.str()?),
        ));
    }
    let kind_node = f.require("kind")?;
    let clusterwide = match kind_node.str()? {
        CNP => false,
        CCNP => true,
        other => {
            return Err(Fault::invalid(
                kind_node.path,
                format!("expected {CNP} or {CCNP}, found {other:?}"),
            ))
        }
    };
    let meta = f.require("metadata")?.fields(
        &[
            "name",
            "namespace",
            "labels",
            "annotations",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
        ],
        &[],
    )?;
    let name_node = meta.require("name")?;
    let name = name_node.str()?.to_string();
    if name.is_empty() {
        return Err(Fault::invalid(name_node.path, "empty name"));
    }
    for key in ["labels", "annotations"] {
        if let Some(m) = meta.get(key) {
            m.string_map()?;
        }
    }
    let namespace = match (meta.get("namespace"), clusterwide) {
        (Some(n), true) => return Err(Fault::invalid(n.path, format!("not allowed on a {CCNP}"))),
        (Some(n), false) => {
            let ns = n.str()?;
            if ns.is_empty() {
                return Err(Fault::invalid(n.path, "empty namespace"));
            }
            Some(ns.to_string())
        }
        (None, false) => Some("default".to_string()),
        (None, true) => None,
    };

    let mut cidrs = BTreeSet::new();
    let mut fqdns = BTreeSet::new();
    let mut ctx = RuleCtx {
        namespace: namespace.as_deref(),
        cidrs: &mut cidrs,
        fqdns: &mut fqdns,
    };
    let mut rules = Vec::new();
    if let Some(spec) = f.get("spec") {
        rules.push(parse_rule(spec, &mut ctx)?);
    }
    if let Some(specs) = f.get("specs") {
        let items = specs.list()?;
        if items.is_empty() {
            return Err(Fault::invalid(specs.path, "empty list"));
        }
        for (p, v) in items {
            rules.push(parse_rule(Node::new(v, &p), &mut ctx)?);
        }
    }
    if rules.is_empty() {
        return Err(Fault::new("spec", crate::error::Problem::Missing));
    }
    Ok(PolicyDoc {
        source: path.to_path_buf(),
        index: i,
        name,
        namespace,
        rules,
        cidrs,
        fqdns,
        doc_ref,
    })
}
