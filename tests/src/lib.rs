//! End-to-end harness: runs the real `portcullis` binary against real peers.
//!
//! Peers must be installed (`scripts/install-peers.sh`); a missing peer is a
//! loud failure, never a skip. The binary comes from `PORTCULLIS_BIN`, else
//! `target/release/portcullis`, else `target/debug/portcullis`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

pub use tempfile::TempDir;

mod agent;
mod client;
mod config;
pub mod dns;
pub mod h2raw;
pub mod kafka;
mod netns;
mod nginx;
mod portcullis;
mod wait;

pub use agent::*;
pub use client::*;
pub use config::*;
pub use netns::*;
pub use nginx::*;
pub use portcullis::*;
pub use wait::*;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn portcullis_bin() -> PathBuf {
    if let Ok(p) = std::env::var("PORTCULLIS_BIN") {
        return PathBuf::from(p);
    }
    for profile in ["release", "debug"] {
        let p = workspace_root()
            .join("target")
            .join(profile)
            .join("portcullis");
        if p.exists() {
            return p;
        }
    }
    panic!("portcullis binary not found: build it (cargo build --release -p portcullis) or set PORTCULLIS_BIN");
}

/// Fails loudly when a peer program is missing.
pub fn require(program: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed: run scripts/install-peers.sh"
    );
}

/// A port free on 127.0.0.1 right now, and never the same one twice in this
/// test process: once a probe socket is closed the kernel may hand its port
/// to the next probe, and two listeners of one config then clash.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a python peer script from tests/peers and waits for its "ready" line.
pub fn python_peer(script: &str, args: &[&str]) -> Proc {
    let path = workspace_root().join("tests/peers").join(script);
    let mut child = Command::new("python3")
        .arg(&path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {script}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(
        line.contains("ready"),
        "{script} did not become ready: {line:?}"
    );
    Proc {
        child,
        name: script.into(),
    }
}

/// Runs a python peer script to completion: (exit code, stdout).
pub fn python_run(script: &str, args: &[&str]) -> (i32, String) {
    let path = workspace_root().join("tests/peers").join(script);
    let out = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("run python");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Fails loudly unless the tests run as root (CI does): namespaces,
/// iptables and port 80 all need it.
pub fn require_root(why: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        euid, "0",
        "{why}: must run as root (CAP_NET_ADMIN, CAP_NET_BIND_SERVICE), as CI does; euid is {euid}"
    );
}

/// Runs `cmd`, panicking with its output when it fails; returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
