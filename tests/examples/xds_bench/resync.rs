//! Phase 2, full resync of a large node: time and RSS.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::ensure;
use npds::proto::NetworkPolicy;
use portcullis_tests::*;
use portcullis_xds::Path;

use crate::agent::*;
use crate::cleanup::Tracked;
use crate::knobs::Knobs;
use crate::report::Report;
use crate::{log, mb};

fn endpoint_ip(i: usize) -> String {
    format!("10.1.{}.{}", i / 250, i % 250 + 1)
}

fn node_rule_path(i: usize, j: usize) -> String {
    format!("/ep{i}/api/v[0-9]+/res{j}/[a-z0-9-]+")
}

/// `k.endpoints` endpoints, each selected by its own CNP with
/// `k.endpoint_rules` rules whose path regexes are distinct node-wide.
fn node_resources(k: &Knobs) -> (Vec<NetworkPolicy>, Vec<npds::proto::NetworkPolicyHosts>) {
    let mut inventory = String::from("endpoints:\n");
    let mut policy = String::new();
    for i in 0..k.endpoints {
        let _ = writeln!(
            inventory,
            "  - {{id: {}, ips: [{}], labels: {{app: ep{i}}}}}",
            i + 1,
            endpoint_ip(i)
        );
        let rules: Vec<String> = (0..k.endpoint_rules)
            .map(|j| rule(&k.method, &node_rule_path(i, j)))
            .collect();
        policy += "---\n";
        policy += &cnp(&format!("ep{i}"), &format!("ep{i}"), 8080, &rules);
    }
    agent_resources(&inventory, &policy)
}

pub fn full_resync(k: &Knobs, rep: &mut Report) -> anyhow::Result<()> {
    let total_rules = k.endpoints * k.endpoint_rules;
    rep.section(format!(
        "2. full resync: {} endpoints x {} HTTP rules = {} L7 rules{}, fresh Portcullis",
        k.endpoints,
        k.endpoint_rules,
        total_rules,
        if k.method.is_empty() {
            String::new()
        } else {
            format!(" (each {} + path regex)", k.method)
        }
    ));
    let t = Instant::now();
    let (policies, hosts) = node_resources(k);
    let rules: usize = policies.iter().map(http_rule_count).sum();
    log(format!(
        "built {} NetworkPolicies ({rules} HTTP rules) and {} hosts entries in {:.1} s",
        policies.len(),
        hosts.len(),
        t.elapsed().as_secs_f64()
    ));
    ensure!(
        policies.len() == k.endpoints,
        "{} NetworkPolicies, expected {}",
        policies.len(),
        k.endpoints
    );
    ensure!(
        rules == total_rules,
        "{rules} HTTP rules, expected {total_rules}"
    );

    let dir = tempfile::tempdir()?;
    let _t_dir = Tracked::dir(dir.path());
    let agent = Agent::start(&dir.path().join("xds.sock"));
    let port = free_port();
    // The listener is never used: no traffic goes to these endpoints.
    let (mut pc, _t_pc, _t_pcdir) = start_portcullis(&agent, port, "127.0.0.10:9".parse().unwrap());
    await_streams(&agent, &mut pc)?;
    std::thread::sleep(Duration::from_millis(200));
    let pid = pc.pid();
    let rss0 = proc_status_bytes(pid, "VmRSS")?;

    let vh = agent.cache.set_hosts(hosts);
    await_version(&agent, Path::NetworkPolicyHosts, vh, k.ack_timeout)?;

    let t = Instant::now();
    let v1 = agent.cache.set_network_policies(policies.clone());
    await_version(&agent, Path::NetworkPolicies, v1, k.ack_timeout)?;
    let d1 = t.elapsed();
    let encoded: usize = agent
        .cache
        .snapshot(Path::NetworkPolicies)
        .resources
        .iter()
        .map(|(_, any)| any.value.len())
        .sum();
    let rss1 = proc_status_bytes(pid, "VmRSS")?;
    let hwm1 = proc_status_bytes(pid, "VmHWM")?;
    let ready = pc.admin_get("/ready").0;

    // The same content as a new version (order reversed, so the cache does
    // not dedupe it): every endpoint is unchanged.
    let mut same = policies.clone();
    same.reverse();
    let t = Instant::now();
    let v2 = agent.cache.set_network_policies(same);
    ensure!(
        v2 == v1 + 1,
        "identical push did not get a new version ({v1} -> {v2})"
    );
    await_version(&agent, Path::NetworkPolicies, v2, k.ack_timeout)?;
    let d2 = t.elapsed();
    let rss2 = proc_status_bytes(pid, "VmRSS")?;

    // One endpoint's rule changed, 999 unchanged.
    let mut one = policies;
    replace_path_regex(&mut one[0], &node_rule_path(0, 0), "/ep0/changed/[0-9]+")?;
    let t = Instant::now();
    let v3 = agent.cache.set_network_policies(one);
    await_version(&agent, Path::NetworkPolicies, v3, k.ack_timeout)?;
    let d3 = t.elapsed();
    let rss3 = proc_status_bytes(pid, "VmRSS")?;
    let hwm3 = proc_status_bytes(pid, "VmHWM")?;
    ensure!(pc.is_running(), "portcullis exited; log:\n{}", pc.log());

    let per_gb = |bytes: u64| total_rules as f64 / (bytes as f64 / 1e9);
    let grown = rss1.saturating_sub(rss0);
    rep.target(
        "set -> ACK, first full push",
        format!("{:.3} s", d1.as_secs_f64()),
        "<= 1 s",
        d1 <= Duration::from_secs(1),
    );
    rep.row("RSS before (streams open, no policy)", mb(rss0));
    rep.row("RSS after the first push", mb(rss1));
    rep.row("RSS increase", mb(grown));
    rep.row("peak RSS (VmHWM) after the first push", mb(hwm1));
    rep.target(
        "L7 rules per GB, on the RSS increase",
        format!("{:.0}", per_gb(grown.max(1))),
        ">= 500000",
        per_gb(grown.max(1)) >= 500_000.0,
    );
    rep.target(
        "L7 rules per GB, on the total RSS",
        format!("{:.0}", per_gb(rss1)),
        ">= 500000",
        per_gb(rss1) >= 500_000.0,
    );
    rep.row(
        "set -> ACK, second push, identical content (new version)",
        format!("{:.3} s", d2.as_secs_f64()),
    );
    rep.row("RSS after the second push", mb(rss2));
    rep.row(
        format!("set -> ACK, 1 of {} endpoints changed", k.endpoints),
        format!("{:.3} s", d3.as_secs_f64()),
    );
    rep.row(
        "RSS / peak RSS after that",
        format!("{} / {}", mb(rss3), mb(hwm3)),
    );
    rep.row(
        "NPDS response size (encoded NetworkPolicies)",
        mb(encoded as u64),
    );
    rep.check(
        "/ready after the first push",
        format!("HTTP {ready}"),
        ready == 200,
    );
    Ok(())
}
