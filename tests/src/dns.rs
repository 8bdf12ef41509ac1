//! DNS peers: dnsmasq serving a local test zone, and dig as the client.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{require, Proc};

/// dnsmasq answering `records` (name, address) with `ttl`, and NXDOMAIN for
/// other names under their domains; nothing is forwarded anywhere.
pub struct Dnsmasq {
    _proc: Proc,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Dnsmasq {
    pub fn start(addr: SocketAddr, records: &[(&str, &str)], ttl: u32) -> Dnsmasq {
        require("dnsmasq");
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("dnsmasq");
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--log-facility=-",
            "--cache-size=0",
        ])
        .arg(format!("--pid-file={}/dnsmasq.pid", dir.path().display()))
        .arg(format!("--listen-address={}", addr.ip()))
        .arg(format!("--port={}", addr.port()))
        .arg(format!("--local-ttl={ttl}"));
        if nix_is_root() {
            cmd.arg("--user=root");
        }
        let mut domains: Vec<String> = Vec::new();
        for (name, ip) in records {
            cmd.arg(format!("--host-record={name},{ip}"));
            let domain = name.split_once('.').map_or(*name, |(_, d)| d).to_string();
            if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
        for d in domains {
            cmd.arg(format!("--local=/{d}/"));
        }
        let log = std::fs::File::create(dir.path().join("dnsmasq.log")).unwrap();
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn dnsmasq");
        let d = Dnsmasq {
            _proc: Proc {
                child,
                name: "dnsmasq".into(),
            },
            addr,
            dir,
        };
        // Up when it answers over TCP (it serves both).
        crate::wait_for_port(addr, Duration::from_secs(10));
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dnsmasq.log")).unwrap_or_default()
    }
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// What dig saw.
#[derive(Debug)]
pub struct Dig {
    /// `NOERROR`, `REFUSED`, `NXDOMAIN`, `SERVFAIL`, … or `TIMEOUT`.
    pub status: String,
    /// The addresses in the answer section.
    pub answers: Vec<String>,
    pub output: String,
    pub elapsed: Duration,
}

/// `dig` from `source` to `server` for `name` (type A), with `extra`
/// options (e.g. `+tcp`). One try, a 3-second wait.
pub fn dig(source: &str, server: SocketAddr, name: &str, extra: &[&str]) -> Dig {
    require("dig");
    let started = Instant::now();
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "-b", source])
        .args(["+tries=1", "+time=3", "+nocookie"])
        .args(extra)
        .arg(name)
        .arg("A")
        .output()
        .expect("run dig");
    let elapsed = started.elapsed();
    let output = String::from_utf8_lossy(&out.stdout).to_string();
    let status = output
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap_or("").to_string())
        .unwrap_or_else(|| {
            if output.contains("timed out") || output.contains("no servers could be reached") {
                "TIMEOUT".to_string()
            } else {
                format!("UNPARSED: {output}")
            }
        });
    let answers = answer_addresses(&output);
    Dig {
        status,
        answers,
        output,
        elapsed,
    }
}

fn answer_addresses(output: &str) -> Vec<String> {
    let mut in_answer = false;
    let mut out = Vec::new();
    for l in output.lines() {
        if l.starts_with(";; ANSWER SECTION") {
            in_answer = true;
            continue;
        }
        if in_answer {
            if l.trim().is_empty() {
                break;
            }
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 5 && (f[3] == "A" || f[3] == "AAAA") {
                out.push(f[4].to_string());
            }
        }
    }
    out
}
