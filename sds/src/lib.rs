//! Secrets that policy names, as they arrive over Envoy SDS
//! (`envoy.extensions.transport_sockets.tls.v3.Secret`).
//!
//! The agent syncs Kubernetes secrets as `<syncNS>/<ns>-<name>` and names
//! them from NPDS: `value_sds_secret` of header matches (generic secrets),
//! and `tls_sds_secret` / `validation_context_sds_secret` of TLS contexts.
//! A [`SecretStore`] is immutable and swapped whole on every update; its
//! `Debug` and [`SecretStore::dump`] never show material, only what is held.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::{data_source::Specifier, DataSource};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{secret::Type, Secret};
use serde::Serialize;

/// What one secret holds. Material stays inside; only its shape is public.
#[derive(Clone)]
pub enum Material {
    /// A generic secret: the value a header match compares with.
    Generic(Arc<str>),
    /// A certificate chain and its private key, PEM.
    TlsCertificate { chain: Arc<[u8]>, key: Arc<[u8]> },
    /// Trusted CA certificates, PEM.
    ValidationContext { trusted_ca: Arc<[u8]> },
}

impl Material {
    fn kind(&self) -> &'static str {
        match self {
            Material::Generic(_) => "generic",
            Material::TlsCertificate { .. } => "tls_certificate",
            Material::ValidationContext { .. } => "validation_context",
        }
    }
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}([redacted])", self.kind())
    }
}

/// Why a secret resource was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret {name:?}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("secret {0:?} is sent twice")]
    Duplicate(String),
}

/// Every secret currently held, by name.
#[derive(Clone, Default)]
pub struct SecretStore {
    secrets: BTreeMap<String, Material>,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.secrets.iter()).finish()
    }
}

/// One entry of `/config_dump`: the name and kind, never the material.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SecretDump {
    pub name: String,
    pub kind: &'static str,
    pub material: &'static str,
}

impl SecretStore {
    /// Builds a store from a complete SDS update; all or nothing.
    pub fn compile(secrets: &[Secret]) -> Result<Self, SecretError> {
        let mut out = BTreeMap::new();
        for s in secrets {
            let material = material(s)?;
            if out.insert(s.name.clone(), material).is_some() {
                return Err(SecretError::Duplicate(s.name.clone()));
            }
        }
        Ok(SecretStore { secrets: out })
    }

    pub fn get(&self, name: &str) -> Option<&Material> {
        self.secrets.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.secrets.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    pub fn dump(&self) -> Vec<SecretDump> {
        self.secrets
            .iter()
            .map(|(name, m)| SecretDump {
                name: name.clone(),
                kind: m.kind(),
                material: "[redacted]",
            })
            .collect()
    }
}

impl l7_http::SecretSource for SecretStore {
    /// Header matches compare against generic secrets only; a TLS secret
    /// under that name is no value at all, so the match fails closed.
    fn secret(&self, name: &str) -> Option<Arc<str>> {
        match self.secrets.get(name)? {
            Material::Generic(v) => Some(v.clone()),
            _ => None,
        }
    }
}

fn material(s: &Secret) -> Result<Material, SecretError> {
    let bad = |reason: &str| SecretError::Invalid {
        name: s.name.clone(),
        reason: reason.to_string(),
    };
    if s.name.is_empty() {
        return Err(bad("has no name"));
    }
    match &s.r#type {
        Some(Type::GenericSecret(g)) => {
            let bytes = inline(g.secret.as_ref())
                .map_err(|r| bad(&format!("generic_secret.secret: {r}")))?;
            let value =
                String::from_utf8(bytes).map_err(|_| bad("generic_secret.secret is not UTF-8"))?;
            Ok(Material::Generic(value.into()))
        }
        Some(Type::TlsCertificate(t)) => {
            let chain = inline(t.certificate_chain.as_ref())
                .map_err(|r| bad(&format!("tls_certificate.certificate_chain: {r}")))?;
            let key = inline(t.private_key.as_ref())
                .map_err(|r| bad(&format!("tls_certificate.private_key: {r}")))?;
            Ok(Material::TlsCertificate {
                chain: chain.into(),
                key: key.into(),
            })
        }
        Some(Type::ValidationContext(v)) => {
            let ca = inline(v.trusted_ca.as_ref())
                .map_err(|r| bad(&format!("validation_context.trusted_ca: {r}")))?;
            Ok(Material::ValidationContext {
                trusted_ca: ca.into(),
            })
        }
        Some(Type::SessionTicketKeys(_)) => Err(bad("session ticket keys are not supported")),
        None => Err(bad("has no type")),
    }
}

/// The agent sends material inline; a file or environment reference would
/// make the proxy read paths an agent controls, so it is refused.
fn inline(ds: Option<&DataSource>) -> Result<Vec<u8>, &'static str> {
    match ds.and_then(|d| d.specifier.as_ref()) {
        Some(Specifier::InlineBytes(b)) => Ok(b.clone()),
        Some(Specifier::InlineString(s)) => Ok(s.clone().into_bytes()),
        Some(Specifier::Filename(_)) => {
            Err("file references are not accepted, only inline material")
        }
        Some(Specifier::EnvironmentVariable(_)) => {
            Err("environment references are not accepted, only inline material")
        }
        None => Err("missing"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        GenericSecret, TlsCertificate,
    };
    use l7_http::SecretSource;

    fn ds(s: &str) -> Option<DataSource> {
        Some(DataSource {
            specifier: Some(Specifier::InlineString(s.into())),
            ..Default::default()
        })
    }

    fn generic(name: &str, value: &str) -> Secret {
        Secret {
            name: name.into(),
            r#type: Some(Type::GenericSecret(GenericSecret {
                secret: ds(value),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn holds_generic_and_tls_secrets_and_never_shows_them() {
        let store = SecretStore::compile(&[
            generic("cilium-secrets/default-token", "s3cr3t"),
            Secret {
                name: "cilium-secrets/default-tls".into(),
                r#type: Some(Type::TlsCertificate(TlsCertificate {
                    certificate_chain: ds("-----BEGIN CERTIFICATE-----"),
                    private_key: ds("-----BEGIN PRIVATE KEY-----"),
                    ..Default::default()
                })),
            },
        ])
        .unwrap();
        assert_eq!(
            store.secret("cilium-secrets/default-token").as_deref(),
            Some("s3cr3t")
        );
        // A TLS secret is no header value; unknown names are none either.
        assert_eq!(store.secret("cilium-secrets/default-tls"), None);
        assert_eq!(store.secret("nope"), None);
        let shown = format!("{store:?} {}", serde_json_like(&store.dump()));
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("BEGIN"),
            "{shown}"
        );
        assert!(shown.contains("[redacted]"));
    }

    fn serde_json_like(d: &[SecretDump]) -> String {
        d.iter()
            .map(|e| format!("{}:{}:{}", e.name, e.kind, e.material))
            .collect()
    }

    #[test]
    fn refuses_what_it_cannot_hold() {
        let cases: Vec<(Secret, &str)> = vec![
            (generic("", "x"), "secret \"\": has no name"),
            (
                Secret {
                    name: "a".into(),
                    r#type: None,
                },
                "secret \"a\": has no type",
            ),
            (
                Secret {
                    name: "f".into(),
                    r#type: Some(Type::GenericSecret(GenericSecret {
                        secret: Some(DataSource {
                            specifier: Some(Specifier::Filename("/etc/shadow".into())),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })),
                },
                "secret \"f\": generic_secret.secret: file references are not accepted, only inline material",
            ),
        ];
        for (s, want) in cases {
            assert_eq!(SecretStore::compile(&[s]).unwrap_err().to_string(), want);
        }
        assert_eq!(
            SecretStore::compile(&[generic("d", "1"), generic("d", "2")]).unwrap_err(),
            SecretError::Duplicate("d".into())
        );
    }
}
