//! Phase 3, throughput while the agent pushes updates: wrk through
//! Portcullis, in rounds with and without updates.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context};
use npds::proto::NetworkPolicy;
use portcullis_tests::*;
use portcullis_xds::Path;

use crate::agent::*;
use crate::cleanup::Tracked;
use crate::knobs::Knobs;
use crate::report::Report;
use crate::{log, ms, percentile};

struct WrkResult {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

impl WrkResult {
    /// Each measure's median over `runs` (at least one), errors summed.
    fn medians(runs: &[WrkResult]) -> WrkResult {
        let median = |f: fn(&WrkResult) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        WrkResult {
            rps: median(|r| r.rps),
            p50_ms: median(|r| r.p50_ms),
            p99_ms: median(|r| r.p99_ms),
            errors: runs.iter().map(|r| r.errors).sum(),
        }
    }
}

/// wrk prints 512.00us, 1.23ms, 1.02s, 1.50m.
fn wrk_ms(v: &str) -> Option<f64> {
    let (num, mul) = if let Some(n) = v.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e3)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60e3)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().ok().map(|n| n * mul)
}

fn run_wrk(k: &Knobs, url: &str, secs: u64, latency: bool) -> anyhow::Result<WrkResult> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t1",
        &format!("-c{}", k.connections),
        &format!("-d{secs}s"),
    ]);
    if latency {
        cmd.arg("--latency");
    }
    let child = cmd
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn wrk")?;
    let _t = Tracked::pid(child.id());
    let out = child.wait_with_output()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "wrk failed ({}):\n{text}", out.status);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_string()))
    };
    let rps = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no Requests/sec in wrk output:\n{text}"))?;
    let pct = |p: &str| {
        text.lines()
            .map(str::split_whitespace)
            .find_map(|mut w| {
                (w.next() == Some(p))
                    .then(|| w.next().and_then(wrk_ms))
                    .flatten()
            })
            .unwrap_or(f64::NAN)
    };
    let mut errors = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if let Some(s) = field("Socket errors:") {
        // "connect 0, read 0, write 0, timeout 0"
        errors += s
            .split(',')
            .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Ok(WrkResult {
        rps,
        p50_ms: pct("50%"),
        p99_ms: pct("99%"),
        errors,
    })
}

/// What the background "agent" did while wrk ran.
#[derive(Default)]
struct Pushes {
    /// (when set was called, set -> ACK)
    acked: Vec<(Instant, Duration)>,
    problems: Vec<String>,
}

fn push_loop(
    agent: &Agent,
    versions: &[Vec<NetworkPolicy>; 2],
    rate: f64,
    timeout: Duration,
    stop: &AtomicBool,
) -> Pushes {
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut out = Pushes::default();
    let mut next = Instant::now();
    let mut i = 1usize; // version 0 is in force: start with the other one
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
            continue;
        }
        let t = Instant::now();
        let v = agent.cache.set_network_policies(versions[i % 2].clone());
        match await_version(agent, Path::NetworkPolicies, v, timeout) {
            Ok(()) => out.acked.push((t, t.elapsed())),
            Err(e) => out.problems.push(format!("{e:#}")),
        }
        i += 1;
        next += period;
        if Instant::now() > next + period {
            next = Instant::now(); // fell behind: do not burst to catch up
        }
    }
    out
}

const LOAD_RULES: [&str; 10] = [
    "/api/v[0-9]+/users/[0-9]+",
    "/api/v[0-9]+/users/[0-9]+/profile",
    "/api/v[0-9]+/orders/[0-9]+",
    "/api/v[0-9]+/orders/[0-9]+/lines/[0-9]+",
    "/api/v[0-9]+/carts/[a-f0-9]+",
    "/api/v[0-9]+/search/[a-z]+",
    "/static/[a-z0-9_-]+[.](css|js|png)",
    "/healthz/(live|ready)",
    "/api/v[0-9]+/reviews/[0-9]+",
    "/api/v[0-9]+/items/[0-9]+",
];
const LOAD_PATH: &str = "/api/v1/items/42";

pub fn throughput(k: &Knobs, rep: &mut Report) -> anyhow::Result<()> {
    require("wrk");
    rep.section(format!(
        "3. throughput: wrk -t1 -c{} -d{}s --latency {LOAD_PATH} through Portcullis ({} s warm-up), 10 path rules",
        k.connections, k.duration, k.warmup
    ));
    let origin = free_port();
    let body = "a".repeat(99);
    let nginx = Nginx::start(
        &format!(
            r#"server {{ listen 127.0.0.10:{origin} backlog=4096; keepalive_timeout 300s; location / {{ return 200 "{body}\n"; }} }}"#
        ),
        &[origin],
    );
    let _t_nginx = Tracked::nginx(&nginx);
    let dir = tempfile::tempdir()?;
    let _t_dir = Tracked::dir(dir.path());
    let agent = Agent::start(&dir.path().join("xds.sock"));
    let inventory = "endpoints: [{id: 1, ips: [127.0.0.10], labels: {app: origin}}]\n";
    // Version A: the ten rules of bench/http.sh (the request matches only the
    // last). Version B: the first rule changed. Both allow LOAD_PATH.
    let render = |first: &str| -> Vec<String> {
        std::iter::once(first)
            .chain(LOAD_RULES[1..].iter().copied())
            .map(|p| rule("", p))
            .collect()
    };
    let (a, hosts) = agent_resources(
        inventory,
        &cnp("bench", "origin", origin, &render(LOAD_RULES[0])),
    );
    let (b, _) = agent_resources(
        inventory,
        &cnp(
            "bench",
            "origin",
            origin,
            &render("/api/v[0-9]+/members/[0-9]+"),
        ),
    );
    ensure!(a != b, "the two policy versions are identical");
    agent.cache.set_hosts(hosts);
    let v0 = agent.cache.set_network_policies(a.clone());
    let port = free_port();
    let (pc, _t_pc, _t_pcdir) =
        start_portcullis(&agent, port, SocketAddr::from(([127, 0, 0, 10], origin)));
    pc.wait_ready();
    await_version(&agent, Path::NetworkPolicies, v0, k.ack_timeout)?;
    for (path, want) in [
        (LOAD_PATH, 200),
        ("/api/v1/admin/42", 403),
        ("/api/v1/users/7", 200),
    ] {
        let s = status_of(port, path);
        ensure!(s == want, "before the runs: {path} gave {s}, want {want}");
    }
    let url = format!("http://127.0.0.1:{port}{LOAD_PATH}");

    // Rounds alternate a run without updates and a run with them, so that
    // drift in the machine's load (a shared VM drifts by tens of percent
    // within a minute) hits both sides alike; medians are compared.
    log(format!("warm-up: wrk {}s", k.warmup));
    if k.warmup > 0 {
        run_wrk(k, &url, k.warmup, false)?;
    }
    let stop = AtomicBool::new(false);
    let versions = [a, b];
    let mut bases = Vec::new();
    let mut upds = Vec::new();
    let mut windows = Vec::new();
    let mut pushes = Pushes::default();
    for round in 1..=k.load_rounds {
        log(format!(
            "round {round}/{}: without updates, wrk {}s",
            k.load_rounds, k.duration
        ));
        let base = run_wrk(k, &url, k.duration, true)?;
        log(format!(
            "  {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, {} errors",
            base.rps, base.p50_ms, base.p99_ms, base.errors
        ));
        log(format!(
            "round {round}/{}: with {} updates/s, wrk {}s",
            k.load_rounds, k.update_rate, k.duration
        ));
        stop.store(false, Ordering::Relaxed);
        let (upd, window, pushed) = std::thread::scope(|s| {
            let pusher = s.spawn(|| {
                push_loop(
                    &agent,
                    &versions,
                    k.update_rate,
                    Duration::from_secs(10),
                    &stop,
                )
            });
            // Updates are already flowing when the measurement starts.
            std::thread::sleep(Duration::from_millis(500));
            let t = Instant::now();
            let run = run_wrk(k, &url, k.duration, true);
            let window = (t, Instant::now());
            stop.store(true, Ordering::Relaxed);
            let pushed = pusher.join().expect("push thread");
            run.map(|r| (r, window, pushed))
        })?;
        log(format!(
            "  {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, {} errors",
            upd.rps, upd.p50_ms, upd.p99_ms, upd.errors
        ));
        bases.push(base);
        upds.push(upd);
        windows.push(window);
        pushes.acked.extend(pushed.acked);
        pushes.problems.extend(pushed.problems);
    }
    let (base, upd) = (WrkResult::medians(&bases), WrkResult::medians(&upds));
    let measured: f64 = windows.iter().map(|w| (w.1 - w.0).as_secs_f64()).sum();

    let in_window: Vec<Duration> = pushes
        .acked
        .iter()
        .filter(|(t, _)| windows.iter().any(|w| *t >= w.0 && *t <= w.1))
        .map(|(_, d)| *d)
        .collect();
    let mut ack_lat: Vec<Duration> = pushes.acked.iter().map(|(_, d)| *d).collect();
    ack_lat.sort();
    let closed = pc.metric("portcullis_connections_closed_by_policy_total");
    let after = status_of(port, LOAD_PATH);

    let p99s = |runs: &[WrkResult]| {
        runs.iter()
            .map(|r| format!("{:.2}", r.p99_ms))
            .collect::<Vec<_>>()
            .join(" ")
    };
    rep.row(
        format!(
            "p99 per round, without | with updates ({} rounds)",
            k.load_rounds
        ),
        format!("{} | {} ms", p99s(&bases), p99s(&upds)),
    );
    rep.row(
        "without updates (medians): req/s | p50 | p99",
        format!(
            "{:.0} | {:.2} | {:.2} ms",
            base.rps, base.p50_ms, base.p99_ms
        ),
    );
    rep.row(
        format!(
            "with {} updates/s (medians): req/s | p50 | p99",
            k.update_rate
        ),
        format!("{:.0} | {:.2} | {:.2} ms", upd.rps, upd.p50_ms, upd.p99_ms),
    );
    let p99_ratio = upd.p99_ms / base.p99_ms;
    rep.target(
        "median p99 with updates / without",
        format!("{p99_ratio:.3}x"),
        "<= 1.10x",
        p99_ratio <= 1.10,
    );
    rep.row(
        "req/s with updates / req/s without",
        format!("{:.2}x", upd.rps / base.rps),
    );
    rep.row(
        "updates ACKed during the measured run (rate)",
        format!(
            "{} ({:.1}/s)",
            in_window.len(),
            in_window.len() as f64 / measured
        ),
    );
    rep.row(
        "set -> ACK under load p50 / max",
        format!(
            "{:.2} / {:.2} ms",
            ms(percentile(&ack_lat, 50.0)),
            ms(*ack_lat.last().unwrap_or(&Duration::ZERO))
        ),
    );
    rep.check(
        "wrk errors (non-2xx + socket), without | with updates",
        format!("{} | {}", base.errors, upd.errors),
        base.errors == 0 && upd.errors == 0,
    );
    rep.check(
        "updates NACKed or not ACKed in 10 s",
        pushes.problems.len().to_string(),
        pushes.problems.is_empty(),
    );
    for p in pushes.problems.iter().take(5) {
        rep.note(format!("push: {p}"));
    }
    rep.check(
        "connections closed by policy (both versions allow)",
        format!("{closed:.0}"),
        closed == 0.0,
    );
    rep.check(
        format!("{LOAD_PATH} after the runs"),
        format!("HTTP {after}"),
        after == 200,
    );
    Ok(())
}
