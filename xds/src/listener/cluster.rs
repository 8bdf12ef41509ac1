//! CDS: the agent's ORIGINAL_DST clusters are what Portcullis forwards
//! through; any other cluster (e.g. the L7 load-balancing backends of a
//! CiliumEnvoyConfig) is reported as ignored.

use std::collections::HashSet;

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::google::protobuf::Any;

use super::{
    decode_resource, fail, named, transport_socket_is_tls, At, Fail, ListenerError, Reason, R,
};

/// A CDS cluster as Portcullis sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSummary {
    pub name: String,
    pub kind: ClusterKind,
}

/// What Portcullis does with a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterKind {
    /// Forward to the original destination; `tls`: cilium.tls_wrapper upstream.
    OriginalDst { tls: bool },
    /// Not used by Portcullis (the caller logs the reason at debug).
    Ignored { reason: String },
}

/// Accepts ORIGINAL_DST clusters (the agent's `egress-cluster`,
/// `ingress-cluster` and their `-tls` variants); other clusters are reported
/// as ignored; a cluster Envoy would refuse, or whose destination choice
/// Portcullis cannot follow, is an error.
pub fn accept_cluster(c: &Cluster) -> Result<ClusterSummary, ListenerError> {
    cluster_summary(c).map_err(|Fail(part, reason)| ListenerError {
        kind: "cluster",
        resource: c.name.clone(),
        part,
        reason: Box::new(reason),
    })
}

/// [`accept_cluster`] over a whole CDS update, all or nothing.
pub fn accept_clusters(resources: &[(String, Any)]) -> Result<Vec<ClusterSummary>, ListenerError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(resources.len());
    for (name, any) in resources {
        let c: Cluster = decode_resource("cluster", name, any)?;
        if !seen.insert(name.as_str()) {
            return Err(named("cluster", name, "resource", Reason::SentTwice));
        }
        out.push(accept_cluster(&c)?);
    }
    Ok(out)
}

/// The checks behind [`accept_cluster`], before the cluster is named.
fn cluster_summary(c: &Cluster) -> R<ClusterSummary> {
    use cluster::{ClusterDiscoveryType, DiscoveryType, LbConfig, LbPolicy};
    if c.name.is_empty() {
        return fail("name", Reason::Invalid("must not be empty"));
    }
    let ignored = |reason: String| {
        Ok(ClusterSummary {
            name: c.name.clone(),
            kind: ClusterKind::Ignored { reason },
        })
    };
    let ty = match &c.cluster_discovery_type {
        None => DiscoveryType::Static,
        Some(ClusterDiscoveryType::Type(t)) => DiscoveryType::try_from(*t)
            .map_err(|_| Fail("type".into(), Reason::DiscoveryType(*t)))?,
        Some(ClusterDiscoveryType::ClusterType(t)) => {
            return ignored(format!(
                "custom cluster type {:?}; Portcullis forwards only to the original destination",
                t.name
            ))
        }
    };
    if ty != DiscoveryType::OriginalDst {
        return ignored(format!(
            "{} cluster; Portcullis forwards only to the original destination",
            ty.as_str_name()
        ));
    }
    if c.lb_policy != LbPolicy::ClusterProvided as i32 {
        let p = LbPolicy::try_from(c.lb_policy)
            .map_or_else(|_| c.lb_policy.to_string(), |p| p.as_str_name().into());
        return fail("lb_policy", Reason::LbPolicy(p));
    }
    if c.load_assignment
        .as_ref()
        .is_some_and(|a| !a.endpoints.is_empty())
    {
        return fail(
            "load_assignment",
            Reason::Invalid("an ORIGINAL_DST cluster takes no endpoints"),
        );
    }
    if let Some(LbConfig::OriginalDstLbConfig(o)) = &c.lb_config {
        if o.use_http_header || !o.http_header_name.is_empty() {
            return fail(
                "original_dst_lb_config.use_http_header",
                Reason::Unsupported(
                    "choosing the destination from a request header is not supported",
                ),
            );
        }
        if o.upstream_port_override.is_some() || o.metadata_key.is_some() {
            return fail(
                "original_dst_lb_config",
                Reason::Unsupported("overriding the original destination is not supported"),
            );
        }
    }
    if !c.transport_socket_matches.is_empty() {
        return fail(
            "transport_socket_matches",
            Reason::Unsupported("is not supported; use transport_socket"),
        );
    }
    let tls = transport_socket_is_tls(c.transport_socket.as_ref(), true)
        .at(|| "transport_socket".into())?;
    let want_tls = match c.name.as_str() {
        "ingress-cluster" | "egress-cluster" => Some(false),
        "ingress-cluster-tls" | "egress-cluster-tls" => Some(true),
        _ => None,
    };
    match want_tls {
        Some(true) if !tls => fail(
            "transport_socket",
            Reason::Invalid(
                "the agent's -tls cluster needs the cilium.tls_wrapper transport socket",
            ),
        ),
        Some(false) if tls => fail(
            "transport_socket",
            Reason::Invalid("cilium.tls_wrapper on a cluster the agent uses for plain text"),
        ),
        _ => Ok(ClusterSummary {
            name: c.name.clone(),
            kind: ClusterKind::OriginalDst { tls },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{agent_clusters, build_original_dst_cluster};
    use super::*;
    use envoy_types::util::pack_any;

    #[test]
    fn clusters_original_dst_accepted_others_ignored() {
        let resources: Vec<_> = agent_clusters()
            .into_iter()
            .map(|c| (c.name.clone(), pack_any(c)))
            .collect();
        let got: Vec<_> = accept_clusters(&resources)
            .unwrap()
            .into_iter()
            .map(|s| (s.name, s.kind))
            .collect();
        let od = |n: &str, tls| (n.to_string(), ClusterKind::OriginalDst { tls });
        assert_eq!(
            got,
            [
                od("ingress-cluster", false),
                od("ingress-cluster-tls", true),
                od("egress-cluster", false),
                od("egress-cluster-tls", true)
            ]
        );

        // Old bootstraps: the wrapper named without a typed_config.
        let mut old = build_original_dst_cluster("egress-cluster-tls", true);
        old.transport_socket.as_mut().unwrap().config_type = None;
        assert_eq!(
            accept_cluster(&old).unwrap().kind,
            ClusterKind::OriginalDst { tls: true }
        );

        let eds = Cluster {
            name: "default/echo".into(),
            cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Eds as i32,
            )),
            ..Default::default()
        };
        assert_eq!(
            accept_cluster(&eds).unwrap().kind,
            ClusterKind::Ignored {
                reason: "EDS cluster; Portcullis forwards only to the original destination".into()
            }
        );

        let refused = |edit: fn(&mut Cluster), expected: &str| {
            let mut c = build_original_dst_cluster("ingress-cluster-tls", true);
            edit(&mut c);
            assert_eq!(
                accept_cluster(&c).unwrap_err().to_string(),
                format!("cluster \"ingress-cluster-tls\": {expected}")
            );
        };
        refused(
            |c| c.lb_policy = 0,
            "lb_policy: ROUND_ROBIN: an ORIGINAL_DST cluster needs CLUSTER_PROVIDED",
        );
        refused(
            |c| c.transport_socket = None,
            "transport_socket: the agent's -tls cluster needs the cilium.tls_wrapper transport socket",
        );
        refused(|c| c.transport_socket.as_mut().unwrap().name = "envoy.transport_sockets.tls".into(),
            "transport_socket: \"envoy.transport_sockets.tls\" is not supported; only envoy.transport_sockets.raw_buffer and cilium.tls_wrapper");
        refused(|c| c.lb_config = Some(cluster::LbConfig::OriginalDstLbConfig(cluster::OriginalDstLbConfig { use_http_header: true, ..Default::default() })),
            "original_dst_lb_config.use_http_header: choosing the destination from a request header is not supported");
        refused(
            |c| c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(9)),
            "type: 9 is not a discovery type",
        );
    }
}
