//! The listener filters: `cilium.bpf_metadata` (required, once) gives the
//! direction, proxy id and identity sources; the TLS inspector is accepted
//! because Portcullis sniffs the ClientHello itself.

use std::time::Duration;

use envoy_types::pb::envoy::config::listener::v3::{listener_filter, Listener};
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::google::protobuf as pb;

use super::{fail, names, non_empty, typed, At, BpfMetadataSummary, Fail, Reason, ECDS, R};
use cilium_api::cilium::BpfMetadata;

/// Exactly one `cilium.bpf_metadata`, optionally the TLS inspector, nothing
/// else; returns (is_ingress, proxy_id, summary).
pub(super) fn listener_filters(l: &Listener) -> R<(bool, u32, BpfMetadataSummary)> {
    let mut found = None;
    for (i, f) in l.listener_filters.iter().enumerate() {
        let part = || format!("listener_filters[{i}] {}", f.name);
        if f.filter_disabled.is_some() {
            return fail(
                part(),
                Reason::Unsupported("filter_disabled is not supported"),
            );
        }
        let any = match &f.config_type {
            Some(listener_filter::ConfigType::TypedConfig(a)) => Some(a),
            Some(listener_filter::ConfigType::ConfigDiscovery(_)) => return fail(part(), ECDS),
            None => None,
        };
        match f.name.as_str() {
            names::BPF_METADATA => {
                if found.is_some() {
                    return fail(
                        part(),
                        Reason::Invalid("a second cilium.bpf_metadata filter"),
                    );
                }
                let m: BpfMetadata = typed(any).at(part)?;
                found = Some(bpf_summary(&m).at(part)?);
            }
            // Portcullis sniffs the ClientHello itself; the config (JA3
            // fingerprinting) changes nothing here, but must be what it says.
            names::TLS_INSPECTOR => {
                if any.is_some() {
                    typed::<TlsInspector>(any).at(part)?;
                }
            }
            _ => {
                return fail(
                    part(),
                    Reason::Unsupported("a listener filter Portcullis does not implement"),
                )
            }
        }
    }
    found.ok_or_else(|| {
        Fail(
            "listener_filters".into(),
            Reason::Invalid("no cilium.bpf_metadata listener filter; Portcullis takes the direction, proxy_id and identity sources from it"),
        )
    })
}

/// Validates `BpfMetadata` and resolves its defaults (ipcache name, TTLs).
fn bpf_summary(m: &BpfMetadata) -> Result<(bool, u32, BpfMetadataSummary), Reason> {
    if m.proxy_id > u32::from(u16::MAX) {
        return Err(Reason::ProxyIdRange(m.proxy_id));
    }
    if !m.bpf_root.is_empty() && !m.bpf_root.starts_with('/') {
        return Err(Reason::BpfRootRelative(m.bpf_root.clone()));
    }
    // The name is joined under <bpf_root>/tc/globals/: no path tricks.
    if m.ipcache_name.contains('/') || m.ipcache_name == "." || m.ipcache_name == ".." {
        return Err(Reason::IpcacheName(m.ipcache_name.clone()));
    }
    if m.is_l7lb && m.is_ingress {
        return Err(Reason::Invalid(
            "is_l7lb is only valid on an egress listener",
        ));
    }
    let ipv4_source_address = parse_opt(&m.ipv4_source_address, "ipv4_source_address")?;
    let ipv6_source_address = parse_opt(&m.ipv6_source_address, "ipv6_source_address")?;
    let cache_entry_ttl = duration(m.cache_entry_ttl.as_ref(), "cache_entry_ttl")?
        .unwrap_or(Duration::from_millis(3));
    let cache_gc_interval = duration(m.cache_gc_interval.as_ref(), "cache_gc_interval")?
        .unwrap_or(cache_entry_ttl * 10);
    let summary = BpfMetadataSummary {
        bpf_root: non_empty(&m.bpf_root),
        ipcache_name: non_empty(&m.ipcache_name).unwrap_or_else(|| "cilium_ipcache".into()),
        use_original_source_address: m.use_original_source_address,
        use_nphds: m.use_nphds,
        is_l7lb: m.is_l7lb,
        enforce_policy_on_l7lb: m.enforce_policy_on_l7lb,
        ipv4_source_address,
        ipv6_source_address,
        l7lb_policy_name: non_empty(&m.l7lb_policy_name),
        original_source_so_linger: m.original_source_so_linger_time,
        cache_entry_ttl,
        cache_gc_interval,
    };
    // policy_update_warning_limit (deprecated, no effect) and
    // cilium_config_source (Portcullis takes NPDS from its own agent stream)
    // are ignored on purpose.
    Ok((m.is_ingress, m.proxy_id, summary))
}

/// An optional address field: empty is unset.
fn parse_opt<T: std::str::FromStr>(s: &str, field: &'static str) -> Result<Option<T>, Reason> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| Reason::AddressFamily {
        field,
        value: s.to_string(),
    })
}

/// A protobuf Duration, refused when negative or denormal.
fn duration(d: Option<&pb::Duration>, field: &'static str) -> Result<Option<Duration>, Reason> {
    let Some(d) = d else { return Ok(None) };
    match (u64::try_from(d.seconds), u32::try_from(d.nanos)) {
        (Ok(s), Ok(n)) if n < 1_000_000_000 => Ok(Some(Duration::new(s, n))),
        _ => Err(Reason::Duration(field)),
    }
}
