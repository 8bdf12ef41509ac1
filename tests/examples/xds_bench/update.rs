//! Phase 1, update latency: from a push to the ACK, and enforced at the ACK.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use portcullis_tests::*;
use portcullis_xds::Path;

use crate::agent::*;
use crate::cleanup::Tracked;
use crate::knobs::Knobs;
use crate::report::Report;
use crate::{ms, percentile};

pub fn update_latency(k: &Knobs, rep: &mut Report) -> anyhow::Result<()> {
    rep.section(format!(
        "1. update latency: 1 endpoint x {} HTTP rules, {} updates changing one rule each, set_network_policies -> ACK",
        k.rules, k.updates
    ));
    let origin = free_port();
    let nginx = Nginx::start(
        &format!(r#"server {{ listen 127.0.0.10:{origin}; location / {{ return 200 "ok\n"; }} }}"#),
        &[origin],
    );
    let _t_nginx = Tracked::nginx(&nginx);
    let dir = tempfile::tempdir()?;
    let _t_dir = Tracked::dir(dir.path());
    let agent = Agent::start(&dir.path().join("xds.sock"));

    let rule_path = |j: usize, generation: usize| format!("/bench/r{j}/v{generation}/[0-9]+");
    let probe = |j: usize, generation: usize| format!("/bench/r{j}/v{generation}/7");
    let rules: Vec<String> = (0..k.rules)
        .map(|j| rule(&k.method, &rule_path(j, 0)))
        .collect();
    let inventory = "endpoints: [{id: 1, ips: [127.0.0.10], labels: {app: origin}}]\n";
    let (policies, hosts) = agent_resources(inventory, &cnp("bench", "origin", origin, &rules));
    ensure!(
        policies.len() == 1,
        "expected 1 NetworkPolicy, got {}",
        policies.len()
    );
    let mut np = policies.into_iter().next().unwrap();
    ensure!(
        http_rule_count(&np) == k.rules,
        "translated policy has {} HTTP rules, expected {}",
        http_rule_count(&np),
        k.rules
    );
    agent.cache.set_hosts(hosts);
    let v0 = agent.cache.set_network_policies(vec![np.clone()]);

    let port = free_port();
    let (pc, _t_pc, _t_pcdir) =
        start_portcullis(&agent, port, SocketAddr::from(([127, 0, 0, 10], origin)));
    pc.wait_ready();
    await_version(&agent, Path::NetworkPolicies, v0, k.ack_timeout)?;
    ensure!(
        status_of(port, &probe(0, 0)) == 200,
        "initial policy: {} is not 200",
        probe(0, 0)
    );
    ensure!(
        status_of(port, "/bench/none/7") == 403,
        "initial policy: /bench/none/7 is not 403"
    );

    // Keep-alive connections opened before the updates; SO_REUSEPORT spreads
    // them over Portcullis' workers.
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let local = "127.0.0.1".parse().unwrap();
    let mut conns: Vec<KeepAlive> = (0..k.keepalive)
        .map(|_| KeepAlive::connect(local, addr))
        .collect();
    for (i, c) in conns.iter_mut().enumerate() {
        let (s, _) = c
            .get(&probe(0, 0), &[])
            .with_context(|| format!("keep-alive connection {i}"))?;
        ensure!(
            s == 200,
            "keep-alive connection {i}: {} gave {s}",
            probe(0, 0)
        );
    }

    let mut generation = vec![0usize; k.rules];
    let mut lat = Vec::with_capacity(k.updates);
    let (mut samples, mut samples_ok) = (0usize, 0usize);
    let mut reconnects = 0usize;
    let started = Instant::now();
    for u in 1..=k.updates {
        let j = (u - 1) % k.rules;
        let old = generation[j];
        replace_path_regex(&mut np, &rule_path(j, old), &rule_path(j, u))?;
        generation[j] = u;
        let resources = vec![np.clone()];
        let t = Instant::now();
        let v = agent.cache.set_network_policies(resources);
        await_version(&agent, Path::NetworkPolicies, v, k.ack_timeout)
            .with_context(|| format!("update {u}"))?;
        lat.push(t.elapsed());

        if u % k.verify_every == 0 {
            samples += 1;
            let mut problems = Vec::new();
            let new_path = probe(j, u);
            let s = status_of(port, &new_path);
            if s != 200 {
                problems.push(format!("new connection: {new_path} gave {s}, want 200"));
            }
            for (i, c) in conns.iter_mut().enumerate() {
                match c.get(&new_path, &[]) {
                    Ok((200, _)) => {}
                    Ok((s, _)) => {
                        problems.push(format!("keep-alive {i}: {new_path} gave {s}, want 200"))
                    }
                    Err(e) => {
                        problems.push(format!("keep-alive {i}: {e}"));
                        *c = KeepAlive::connect(local, addr);
                        reconnects += 1;
                    }
                }
            }
            let old_path = probe(j, old);
            let s = status_of(port, &old_path);
            if s != 403 {
                problems.push(format!("new connection: {old_path} gave {s}, want 403"));
            }
            if problems.is_empty() {
                samples_ok += 1;
            } else {
                rep.note(format!("update {u} (version {v}): {}", problems.join("; ")));
            }
        }
    }
    let total = started.elapsed();
    let (accepted, rejected) = (
        pc.metric("portcullis_xds_updates_accepted_total{type_url=\"type.googleapis.com/cilium.NetworkPolicy\"}"),
        pc.metric("portcullis_xds_updates_rejected_total{type_url=\"type.googleapis.com/cilium.NetworkPolicy\"}"),
    );

    lat.sort();
    let (p50, p99, max) = (
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        *lat.last().unwrap_or(&Duration::ZERO),
    );
    let mean = lat.iter().sum::<Duration>() / lat.len().max(1) as u32;
    rep.row("set -> ACK p50", format!("{:.3} ms", ms(p50)));
    rep.target(
        "set -> ACK p99",
        format!("{:.3} ms", ms(p99)),
        "<= 10 ms",
        p99 <= Duration::from_millis(10),
    );
    rep.row("set -> ACK max", format!("{:.3} ms", ms(max)));
    rep.row("set -> ACK mean", format!("{:.3} ms", ms(mean)));
    rep.row(
        format!("all {} updates, incl. the checks", k.updates),
        format!("{:.2} s", total.as_secs_f64()),
    );
    rep.row(
        "proxy counters: NPDS updates accepted / rejected",
        format!("{accepted:.0} / {rejected:.0}"),
    );
    rep.check(
        format!(
            "enforced at ACK: new rule 200 (new conn + {} keep-alive), old 403",
            k.keepalive
        ),
        format!("{samples_ok}/{samples} samples"),
        samples_ok == samples && samples > 0,
    );
    if reconnects > 0 {
        rep.note(format!(
            "{reconnects} keep-alive connection(s) were closed during the updates and reopened"
        ));
    }
    Ok(())
}
