//! Network namespaces (tests/tests/redirect.rs, kafka.rs, demo.rs).
//!
//! Real kernel redirection (iptables REDIRECT, TPROXY) inside network namespaces
//! the tests create and delete; the root namespace's routes and rules are never
//! touched. Processes run in a namespace through `ip netns exec NS ...`, which
//! execs the program itself, so `Proc`'s kill reaches it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::{require, require_root, run_ok, wait_until};

/// when the test panics). Declare it before the processes that run in it, so
/// that they are killed first.
pub struct Netns {
    pub name: String,
}

static NETNS_SEQ: AtomicUsize = AtomicUsize::new(0);

impl Netns {
    pub fn new(tag: &str) -> Netns {
        require_root("creating a network namespace");
        require("ip");
        sweep_stale_netns();
        let name = format!(
            "pcx-{}-{}-{tag}",
            std::process::id(),
            NETNS_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip("link set lo up");
        ns
    }

    /// `ip -n NS <args>` (whitespace-separated), which must succeed.
    pub fn ip(&self, args: &str) -> String {
        run_ok(
            Command::new("ip")
                .args(["-n", &self.name])
                .args(args.split_whitespace()),
        )
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `cmdline` (whitespace-separated) inside the namespace; it must succeed.
    pub fn run(&self, cmdline: &str) -> String {
        let mut words = cmdline.split_whitespace();
        let program = words.next().expect("empty command line");
        run_ok(self.command(program).args(words))
    }

    /// Waits until something accepts TCP connections on `addr` inside the namespace.
    pub fn wait_for_port(&self, addr: SocketAddr, timeout: Duration) {
        let probe = format!("exec 3<>/dev/tcp/{}/{}", addr.ip(), addr.port());
        let what = format!("a listener on {addr} in netns {}", self.name);
        wait_until(what, timeout, || {
            self.command("bash")
                .args(["-c", &probe])
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        });
    }

    /// The packet counter of the one `iptables -S` rule in `table`/`chain`
    /// whose text contains `needle`.
    pub fn iptables_packets(&self, table: &str, chain: &str, needle: &str) -> u64 {
        let rules = self.run(&format!("iptables -t {table} -S {chain} -v"));
        let line = rules
            .lines()
            .filter(|l| l.starts_with("-A ") && l.contains(needle))
            .collect::<Vec<_>>();
        assert_eq!(
            line.len(),
            1,
            "expected one rule containing {needle:?} in {table}/{chain}:\n{rules}"
        );
        let mut words = line[0].split_whitespace();
        words.find(|w| *w == "-c");
        words
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no packet counter in {:?}", line[0]))
    }

    /// Every table's rules with counters, routing rules and addresses: for
    /// failure messages.
    pub fn dump(&self) -> String {
        let mut out = format!("--- netns {} ---\n", self.name);
        for (what, program, args) in [
            ("addresses", "ip", "-brief addr"),
            ("ip rules", "ip", "rule"),
            ("table 100", "ip", "route show table 100"),
            ("nat", "iptables", "-t nat -S -v"),
            ("mangle", "iptables", "-t mangle -S -v"),
        ] {
            let o = self.command(program).args(args.split_whitespace()).output();
            let text = match o {
                Ok(o) => {
                    String::from_utf8_lossy(&o.stdout).into_owned()
                        + &String::from_utf8_lossy(&o.stderr)
                }
                Err(e) => e.to_string(),
            };
            out += &format!("# {what}\n{text}");
        }
        out
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Deletes `pcx-<pid>-...` namespaces left by test processes that died
/// without unwinding (SIGKILL), so they do not pile up.
fn sweep_stale_netns() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix("pcx-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}
