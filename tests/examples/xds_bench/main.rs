//! xDS benchmark: Portcullis fed by "the agent" (the in-process
//! `portcullis_xds::server::XdsCache` of the test harness, on a unix socket).
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

mod agent;
mod cleanup;
mod knobs;
mod load;
mod report;
mod resync;
mod update;

use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use portcullis_tests::*;

use cleanup::{install_signal_handler, stop_if_interrupted, INTERRUPTED};
use knobs::Knobs;
use report::Report;

fn log(msg: impl AsRef<str>) {
    eprintln!("[xds-bench] {}", msg.as_ref());
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
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
            "update" => phase(&mut rep, "1. update latency", |r| {
                update::update_latency(&k, r)
            }),
            "resync" => phase(&mut rep, "2. full resync", |r| resync::full_resync(&k, r)),
            "load" => phase(&mut rep, "3. throughput under updates", |r| {
                load::throughput(&k, r)
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
