//! xDS benchmark: Portcullis fed by "the agent" (the in-process
//! `npds::xds::server::XdsCache` of the test harness, on a unix socket).
//!
//! 1. Update latency: one endpoint with `RULES` HTTP rules; `UPDATES` updates
//!    that each change one rule, timed from `set_network_policies` to the ACK
//!    of that version. Every `VERIFY_EVERY`th update is checked right after
//!    its ACK: the path only the new rule allows is 200 (on a new connection
//!    and on every one of `KEEPALIVE_CONNS` connections opened before the
//!    updates), the path only the replaced rule allowed is 403.
//! 2. Full resync: `ENDPOINTS` endpoints x `ENDPOINT_RULES` rules pushed to
//!    a fresh Portcullis: set -> ACK time, RSS before/after, rules per GB;
//!    then the same content again as a new version, then one endpoint changed.
//! 3. Throughput under updates: `wrk` through Portcullis to an nginx origin,
//!    `LOAD_ROUNDS` rounds of `DURATION` s without updates then `DURATION` s
//!    while the agent pushes `UPDATE_RATE` updates/s; medians compared.
//!
//! A program, not a timed test: it prints a table with the targets and
//! PASS/MISS, and exits 1 only when a check failed (NACK, wrong verdict,
//! wrk errors, a phase that could not run). See bench/README.md.
//!
//!   cargo run --release -p portcullis-tests --example xds_bench
//!   UPDATES=100 ENDPOINTS=100 DURATION=3 cargo run --release -p portcullis-tests --example xds_bench

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context};
use npds::proto::NetworkPolicy;
use npds::xds::grpc::Path;
use portcullis_tests::*;

// ------------------------------------------------------------------ knobs --

struct Knobs {
    phases: Vec<String>,
    // 1. update latency
    updates: usize,
    rules: usize,
    verify_every: usize,
    keepalive: usize,
    // 2. full resync
    endpoints: usize,
    endpoint_rules: usize,
    // 3. throughput under updates
    duration: u64,
    load_rounds: usize,
    warmup: u64,
    connections: usize,
    update_rate: f64,
    // all
    method: String,
    ack_timeout: Duration,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        _ => default,
    }
}

impl Knobs {
    fn from_env() -> Knobs {
        let k = Knobs {
            phases: env_or("PHASES", "update resync load".to_string())
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            updates: env_or("UPDATES", 1000),
            rules: env_or("RULES", 100),
            verify_every: env_or("VERIFY_EVERY", 100),
            keepalive: env_or("KEEPALIVE_CONNS", 8),
            endpoints: env_or("ENDPOINTS", 1000),
            endpoint_rules: env_or("ENDPOINT_RULES", 100),
            duration: env_or("DURATION", 10),
            load_rounds: env_or("LOAD_ROUNDS", 3),
            warmup: env_or("WARMUP", 2),
            connections: env_or("CONNECTIONS", 64),
            update_rate: env_or("UPDATE_RATE", 10.0),
            method: std::env::var("METHOD").unwrap_or_else(|_| "GET".into()),
            ack_timeout: Duration::from_secs(env_or("ACK_TIMEOUT", 120)),
        };
        for p in &k.phases {
            assert!(
                ["update", "resync", "load"].contains(&p.as_str()),
                "PHASES takes update, resync and/or load, not {p:?}"
            );
        }
        assert!(k.rules >= 1 && k.endpoint_rules >= 1 && k.endpoints >= 1);
        assert!(
            k.endpoints <= 250 * 250,
            "ENDPOINTS: at most 62500 (10.1.x.y)"
        );
        assert!(k.verify_every >= 1 && k.duration >= 1 && k.update_rate > 0.0);
        assert!(k.load_rounds >= 1, "LOAD_ROUNDS: at least 1");
        assert!(
            k.method.chars().all(|c| c.is_ascii_uppercase()),
            "METHOD: an HTTP method such as GET, or empty for path-only rules"
        );
        k
    }
}

fn log(msg: impl AsRef<str>) {
    eprintln!("[xds-bench] {}", msg.as_ref());
}

// ---------------------------------------------------- cleanup on signals --
//
// Processes started by the harness are killed when their guards drop (also on
// a panic). A SIGINT/SIGTERM/SIGHUP to this program alone would skip that, so
// their pids and temp dirs are registered here and stopped by a signal thread.

static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Set by the signal thread: the main thread then reports nothing more.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// After a signal the signal thread owns the exit; the main thread (whose
/// phase just failed because its children were killed) waits for it.
fn stop_if_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

struct Tracked {
    pid: Option<u32>,
    dir: Option<PathBuf>,
}

impl Tracked {
    fn pid(pid: u32) -> Tracked {
        CHILDREN.lock().unwrap().push(pid);
        Tracked {
            pid: Some(pid),
            dir: None,
        }
    }

    fn dir(dir: &std::path::Path) -> Tracked {
        DIRS.lock().unwrap().push(dir.to_path_buf());
        Tracked {
            pid: None,
            dir: Some(dir.to_path_buf()),
        }
    }

    fn nginx(n: &Nginx) -> Tracked {
        let pidfile = n.dir.path().join("nginx.pid");
        let pid = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let mut t = Tracked::dir(n.dir.path());
        if let Some(pid) = pid {
            CHILDREN.lock().unwrap().push(pid);
            t.pid = Some(pid);
        }
        t
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            CHILDREN.lock().unwrap().retain(|p| *p != pid);
        }
        if let Some(dir) = &self.dir {
            DIRS.lock().unwrap().retain(|d| d != dir);
        }
    }
}

fn install_signal_handler() {
    std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("signal runtime");
        let name = rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
            tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
            }
        });
        INTERRUPTED.store(true, Ordering::SeqCst);
        let pids = CHILDREN.lock().map(|c| c.clone()).unwrap_or_default();
        for pid in &pids {
            let _ = Command::new("kill")
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
        }
        std::thread::sleep(Duration::from_millis(200));
        for dir in DIRS.lock().map(|d| d.clone()).unwrap_or_default() {
            let _ = std::fs::remove_dir_all(dir);
        }
        log(format!(
            "{name}: stopped {} child process(es), exiting",
            pids.len()
        ));
        std::process::exit(130);
    });
}

// ------------------------------------------------------------- reporting --

#[derive(Clone, Copy, PartialEq)]
enum Verdict {
    Info,
    Pass,
    Miss,
    Fail,
}

struct Row {
    name: String,
    value: String,
    target: String,
    verdict: Verdict,
}

#[derive(Default)]
struct Report {
    sections: Vec<(String, Vec<Row>)>,
    notes: Vec<String>,
    failures: Vec<String>,
}

impl Report {
    fn section(&mut self, title: impl Into<String>) {
        self.sections.push((title.into(), Vec::new()));
    }

    fn row(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.push(name, value, "", Verdict::Info);
    }

    /// A row with a target; `ok` decides PASS or MISS.
    fn target(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        target: &str,
        ok: bool,
    ) {
        let v = if ok { Verdict::Pass } else { Verdict::Miss };
        self.push(name, value, target, v);
    }

    /// A row for a correctness check; a failed check makes the run fail.
    fn check(&mut self, name: impl Into<String>, value: impl Into<String>, ok: bool) {
        let name = name.into();
        let value = value.into();
        if !ok {
            self.failures.push(format!("{name}: {value}"));
        }
        let v = if ok { Verdict::Pass } else { Verdict::Fail };
        self.push(name, value, "all", v);
    }

    fn push(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        target: &str,
        verdict: Verdict,
    ) {
        if self.sections.is_empty() {
            self.section("");
        }
        self.sections.last_mut().unwrap().1.push(Row {
            name: name.into(),
            value: value.into(),
            target: target.into(),
            verdict,
        });
    }

    fn fail(&mut self, what: impl Into<String>) {
        let what = what.into();
        log(format!("FAILED: {what}"));
        self.failures.push(what);
    }

    fn note(&mut self, what: impl Into<String>) {
        self.notes.push(what.into());
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<64} {:>18} {:>14}  verdict",
            "measurement", "value", "target"
        );
        for (title, rows) in &self.sections {
            let _ = writeln!(out, "{title}");
            for r in rows {
                let verdict = match r.verdict {
                    Verdict::Info => "",
                    Verdict::Pass => "PASS",
                    Verdict::Miss => "MISS",
                    Verdict::Fail => "FAIL",
                };
                let _ = writeln!(
                    out,
                    "  {:<62} {:>18} {:>14}  {}",
                    r.name, r.value, r.target, verdict
                );
            }
        }
        let pass = self.count(Verdict::Pass);
        let miss = self.count(Verdict::Miss);
        let fail = self.count(Verdict::Fail);
        let _ = writeln!(
            out,
            "\ntargets and checks: {pass} PASS, {miss} MISS, {fail} FAIL"
        );
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        for f in &self.failures {
            let _ = writeln!(out, "FAILED: {f}");
        }
        out
    }

    fn count(&self, v: Verdict) -> usize {
        self.sections
            .iter()
            .flat_map(|(_, r)| r)
            .filter(|r| r.verdict == v)
            .count()
    }
}

// --------------------------------------------------------------- helpers --

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), in bytes.
fn proc_status_bytes(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow!("no {field} in /proc/{pid}/status"))?;
    Ok(kb * 1024)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The nearest-rank percentile of sorted durations.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Waits for the ACK (Ok) or NACK (Err, with its message) of `version`.
fn await_version(agent: &Agent, path: Path, version: u64, timeout: Duration) -> anyhow::Result<()> {
    let cache = agent.cache.clone();
    let state = agent
        .rt
        .block_on(async move {
            tokio::time::timeout(
                timeout,
                cache.wait_for(path, |s| {
                    s.last_ack.as_ref().is_some_and(|a| a.version == version)
                        || s.last_nack.as_ref().is_some_and(|n| n.nonce == version)
                }),
            )
            .await
        })
        .map_err(|_| {
            anyhow!(
                "{}: no ACK or NACK of version {version} within {timeout:?}",
                path.type_url()
            )
        })?;
    if state
        .last_ack
        .as_ref()
        .is_some_and(|a| a.version == version)
    {
        return Ok(());
    }
    let nack = state.last_nack.expect("checked by the predicate");
    bail!(
        "{} version {version} NACKed (proxy still on {}): {}",
        path.type_url(),
        nack.version,
        nack.message
    )
}

/// Waits until Portcullis has its NPDS and NPHDS streams open on `agent`.
fn await_streams(agent: &Agent, pc: &mut Portcullis) -> anyhow::Result<()> {
    let open = poll(Duration::from_secs(10), || {
        let np = agent.cache.acks(Path::NetworkPolicies).streams_open;
        let hosts = agent.cache.acks(Path::NetworkPolicyHosts).streams_open;
        if np >= 1 && hosts >= 1 {
            Some(true)
        } else {
            (!pc.is_running()).then_some(false)
        }
    });
    match open {
        Some(true) => Ok(()),
        Some(false) => bail!("portcullis exited; log:\n{}", pc.log()),
        None => bail!(
            "portcullis did not open its xDS streams; log:\n{}",
            pc.log()
        ),
    }
}

/// Portcullis with one ingress listener on `port` forwarding to `upstream`,
/// policy from `agent`.
fn start_portcullis(
    agent: &Agent,
    port: u16,
    upstream: SocketAddr,
) -> (Portcullis, Tracked, Tracked) {
    let config = Config::new().listener(Listener::ingress(port).upstream(upstream));
    let pc = Portcullis::start_with_args(&config, &["--xds", &agent.target()]);
    let t_pid = Tracked::pid(pc.pid());
    let t_dir = Tracked::dir(pc.dir.path());
    (pc, t_pid, t_dir)
}

/// An HTTP rule for `path`, and for `method` unless it is empty.
fn rule(method: &str, path: &str) -> String {
    if method.is_empty() {
        format!("{{path: \"{path}\"}}")
    } else {
        http_rule(method, path)
    }
}

/// A CNP for endpoints labelled `app: {app}` allowing anyone the given HTTP
/// `rules` on TCP `port`.
fn cnp(name: &str, app: &str, port: u16, rules: &[String]) -> String {
    Cnp::new(name, app)
        .allow_http(ANYONE, port, rules)
        .to_string()
}

/// Replaces the one `:path` regex equal to `old` with `new`.
fn replace_path_regex(np: &mut NetworkPolicy, old: &str, new: &str) -> anyhow::Result<()> {
    let id = np.endpoint_id;
    let mut hits = path_regexes(np)
        .into_iter()
        .filter(|r| r.as_str() == old)
        .collect::<Vec<_>>();
    ensure!(
        hits.len() == 1,
        "endpoint {id}: {} :path matchers are {old:?}, expected 1",
        hits.len()
    );
    *hits[0] = new.to_string();
    Ok(())
}

fn http_rule_count(np: &NetworkPolicy) -> usize {
    np.ingress_per_port_policies
        .iter()
        .chain(&np.egress_per_port_policies)
        .flat_map(|p| &p.rules)
        .map(|r| match &r.l7 {
            Some(npds::proto::port_network_policy_rule::L7::HttpRules(h)) => h.http_rules.len(),
            _ => 0,
        })
        .sum()
}

/// GET through Portcullis on a new connection (curl); the status code.
fn status_of(port: u16, path: &str) -> u16 {
    curl(&["-o", "/dev/null", &format!("http://127.0.0.1:{port}{path}")]).status
}

/// Runs `f` as a phase: an error or panic fails the phase, not the program.
fn phase(rep: &mut Report, name: &str, f: impl FnOnce(&mut Report) -> anyhow::Result<()>) {
    log(format!("--- {name}"));
    let started = Instant::now();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut *rep)));
    stop_if_interrupted();
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => rep.fail(format!("{name}: {e:#}")),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            rep.fail(format!("{name}: panicked: {msg}"));
        }
    }
    log(format!(
        "--- {name}: {:.1} s",
        started.elapsed().as_secs_f64()
    ));
}

// ------------------------------------------ 1. update latency, push to enforced --

fn update_latency(k: &Knobs, rep: &mut Report) -> anyhow::Result<()> {
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

// --------------------------------------------------------- 2. full resync --

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

fn full_resync(k: &Knobs, rep: &mut Report) -> anyhow::Result<()> {
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

// ------------------------------------------- 3. throughput under updates --

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

fn throughput(k: &Knobs, rep: &mut Report) -> anyhow::Result<()> {
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

// ------------------------------------------------------------------ main --

fn main() {
    install_signal_handler();
    // Panics caused by the signal thread killing our children are not news.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !INTERRUPTED.load(Ordering::SeqCst) {
            default_hook(info);
        }
    }));
    let k = Knobs::from_env();
    let load_start = loadavg();
    let started = Instant::now();
    let bin = portcullis_bin();
    require("nginx");
    require("curl");
    if load_start
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
        .is_some_and(|l| l > 0.5)
    {
        log(format!(
            "WARNING: load average is {load_start} before starting: other work shares the CPUs, numbers will be noisy"
        ));
    }
    log(format!("portcullis binary: {}", bin.display()));

    let mut rep = Report::default();
    for p in &k.phases {
        match p.as_str() {
            "update" => phase(&mut rep, "1. update latency", |r| update_latency(&k, r)),
            "resync" => phase(&mut rep, "2. full resync", |r| full_resync(&k, r)),
            "load" => phase(&mut rep, "3. throughput under updates", |r| {
                throughput(&k, r)
            }),
            _ => unreachable!(),
        }
    }

    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!();
    println!(
        "Portcullis xDS benchmark, {date}, {cores} cores, {kernel}, took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "load average (1/5/15 min) at start: {load_start}; at end: {}",
        loadavg()
    );
    println!(
        "agent: in-process npds XdsCache on a unix socket; Portcullis {} (one worker per core); origin nginx on 127.0.0.10",
        bin.display()
    );
    println!("MB and GB are 10^6 and 10^9 bytes (VmRSS from /proc/<pid>/status)");
    println!();
    print!("{}", rep.render());
    std::process::exit(if rep.failures.is_empty() { 0 } else { 1 });
}
