//! End-to-end harness: runs the real `portcullis` binary against real peers.
//!
//! Peers must be installed (`scripts/install-peers.sh`); a missing peer is a
//! loud failure, never a skip. The binary comes from `PORTCULLIS_BIN`, else
//! `target/release/portcullis`, else `target/debug/portcullis`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use tempfile::TempDir;

pub mod dns;
pub mod h2raw;
pub mod kafka;

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

pub fn wait_for_port(addr: SocketAddr, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listening on {addr} after {timeout:?}");
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

/// An nginx origin with the given `server { ... }` blocks.
pub struct Nginx {
    _proc: Proc,
    pub dir: TempDir,
}

impl Nginx {
    /// `ports` are waited for on 127.0.0.10, where test origins listen.
    pub fn start(servers: &str, ports: &[u16]) -> Nginx {
        let (p, dir) = Nginx::spawn(Command::new("nginx"), servers);
        for port in ports {
            wait_for_port(
                SocketAddr::from(([127, 0, 0, 10], *port)),
                Duration::from_secs(10),
            );
        }
        Nginx { _proc: p, dir }
    }

    /// Writes a config around `servers` into a temp dir and runs `cmd`
    /// (nginx, possibly behind `ip netns exec`) on it in the foreground.
    fn spawn(mut cmd: Command, servers: &str) -> (Proc, TempDir) {
        require("nginx");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};\n\
             fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
             keepalive_requests 100000;\n{servers}\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = cmd
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-p")
            .arg(dir.path())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx");
        let p = Proc {
            child,
            name: "nginx".into(),
        };
        (p, dir)
    }
}

/// A Portcullis whose directory is laid out but which is not running yet.
pub struct Unstarted {
    dir: TempDir,
    config: String,
    files: Vec<(String, String)>,
}

impl Unstarted {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts it and waits for the admin listener.
    pub fn start(self) -> Portcullis {
        self.with_args_started(&[])
    }

    fn with_args_started(self, args: &[&str]) -> Portcullis {
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let files: Vec<(&str, &str)> = self
            .files
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_str()))
            .collect();
        let mut pc = Portcullis::launch(
            Command::new(portcullis_bin()),
            self.dir,
            &self.config,
            &files,
            args,
            admin,
        );
        pc.wait_until("admin listening", || TcpStream::connect(admin).is_ok());
        pc
    }
}

/// A running Portcullis in standalone mode.
pub struct Portcullis {
    proc: Proc,
    pub dir: TempDir,
    pub admin: SocketAddr,
}

impl Portcullis {
    /// Writes `config` (YAML, `{admin}` replaced by a free admin address) and
    /// `files` (name, content) into a temp dir and starts the binary there.
    pub fn start(config: &str, files: &[(&str, &str)]) -> Portcullis {
        Self::start_with_args(config, files, &[])
    }

    /// `start`, with extra command-line arguments for `portcullis run`.
    pub fn start_with_args(config: &str, files: &[(&str, &str)], args: &[&str]) -> Portcullis {
        Self::start_in_dir(tempfile::tempdir().unwrap(), config, files).with_args_started(args)
    }

    /// `start` in a directory the caller prepared (with a FIFO as
    /// `access.log`, say).
    pub fn start_in_dir(dir: TempDir, config: &str, files: &[(&str, &str)]) -> Unstarted {
        Unstarted {
            dir,
            config: config.to_owned(),
            files: files
                .iter()
                .map(|(n, c)| (n.to_string(), c.to_string()))
                .collect(),
        }
    }

    /// Writes the files and the config (`{admin}` replaced, an access log
    /// added) into a temp dir and spawns `program run --config ... args`.
    fn launch(
        mut program: Command,
        dir: TempDir,
        config: &str,
        files: &[(&str, &str)],
        args: &[&str],
        admin: SocketAddr,
    ) -> Portcullis {
        for (name, content) in files {
            let p = dir.path().join(name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(p, content).unwrap();
        }
        let config = config.replace("{admin}", &admin.to_string());
        let config = format!("{config}\naccessLog: access.log\n");
        std::fs::write(dir.path().join("portcullis.yaml"), config).unwrap();
        let child = program
            .args(["run", "--config"])
            .arg(dir.path().join("portcullis.yaml"))
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::inherit())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("portcullis.log")).unwrap(),
            ))
            .spawn()
            .expect("spawn portcullis");
        Portcullis {
            proc: Proc {
                child,
                name: "portcullis".into(),
            },
            dir,
            admin,
        }
    }

    /// Polls `ready` for up to 10 s; fails with the log if the process exits
    /// or the time runs out.
    fn wait_until(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready() {
            assert!(self.is_running(), "portcullis exited; log:\n{}", self.log());
            assert!(
                Instant::now() < deadline,
                "portcullis: not {what} after 10 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Waits until `/ready` says 200.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.admin_get("/ready").0 == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("portcullis not ready; log:\n{}", self.log());
    }

    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(self.admin, path)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("portcullis.log")).unwrap_or_default()
    }

    /// Access-log lines parsed as JSON (waits briefly for the writer).
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(self.path("access.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad access log line {l:?}: {e}"))
            })
            .collect()
    }

    /// CPU seconds (user + system) the process has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        ticks / 100.0
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.proc.child.try_wait(), Ok(None))
    }

    /// A metric's value from `/metrics` (the full sample name with labels).
    pub fn metric(&self, sample: &str) -> f64 {
        let (_, body) = self.admin_get("/metrics");
        body.lines()
            .find_map(|l| {
                l.strip_prefix(sample)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or_else(|| panic!("metric {sample} not found in:\n{body}"))
    }
}

/// A minimal HTTP/1.1 GET over a fresh connection (admin checks only).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    let status = buf.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Sends raw bytes and returns whatever comes back before the peer closes
/// or goes quiet: for request shapes no well-behaved client will send.
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The outcome of one curl run.
#[derive(Debug)]
pub struct CurlResult {
    pub exit: i32,
    pub status: u16,
    pub body: String,
    pub stderr: String,
}

/// Runs curl with `args`, adding `-s -o - -w '\n%{http_code}'`.
pub fn curl(args: &[&str]) -> CurlResult {
    run_curl(Command::new("curl"), args)
}

/// `cmd` is curl, maybe behind `ip netns exec`.
fn run_curl(mut cmd: Command, args: &[&str]) -> CurlResult {
    require("curl");
    let out = cmd
        .args(["-s", "-S", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    CurlResult {
        exit: out.status.code().unwrap_or(-1),
        status: code.trim().parse().unwrap_or(0),
        body: body.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
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

// ==== Network namespaces (tests/tests/redirect.rs) ===========================
//
// Real kernel redirection (iptables REDIRECT, TPROXY) inside network namespaces
// the tests create and delete; the root namespace's routes and rules are never
// touched. Processes run in a namespace through `ip netns exec NS ...`, which
// execs the program itself, so `Proc`'s kill reaches it.

use std::sync::atomic::{AtomicUsize, Ordering};

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

/// A network namespace named `pcx-<pid>-<n>-<tag>`, deleted on drop (also
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
        let deadline = Instant::now() + timeout;
        let probe = format!("exec 3<>/dev/tcp/{}/{}", addr.ip(), addr.port());
        while Instant::now() < deadline {
            let ok = self
                .command("bash")
                .args(["-c", &probe])
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "nothing listening on {addr} in netns {} after {timeout:?}",
            self.name
        );
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

/// Runs curl inside `ns`, like `curl`.
pub fn curl_in(ns: &Netns, args: &[&str]) -> CurlResult {
    run_curl(ns.command("curl"), args)
}

impl Nginx {
    /// Like `start`, inside `ns`, waiting for each of `listen` there.
    pub fn start_in(ns: &Netns, servers: &str, listen: &[SocketAddr]) -> Nginx {
        let (p, dir) = Nginx::spawn(ns.command("nginx"), servers);
        for addr in listen {
            ns.wait_for_port(*addr, Duration::from_secs(10));
        }
        Nginx { _proc: p, dir }
    }
}

impl Portcullis {
    /// Like `start`, inside `ns`; the admin listener is 127.0.0.1:9901 of
    /// that namespace (use `admin_get_in`). Returns once `/ready` is 200.
    pub fn start_in(ns: &Netns, config: &str, files: &[(&str, &str)]) -> Portcullis {
        let admin = SocketAddr::from(([127, 0, 0, 1], 9901));
        let bin = portcullis_bin();
        let program = ns.command(bin.to_str().expect("utf-8 binary path"));
        let mut pc = Self::launch(
            program,
            tempfile::tempdir().unwrap(),
            config,
            files,
            &[],
            admin,
        );
        let url = format!("http://{admin}/ready");
        pc.wait_until(&format!("ready in netns {}", ns.name), || {
            curl_in(ns, &["--max-time", "2", &url]).status == 200
        });
        pc
    }

    /// An admin GET from inside `ns`: (status, body); status 0 when unreachable.
    pub fn admin_get_in(&self, ns: &Netns, path: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.admin);
        let r = curl_in(ns, &["--max-time", "2", &url]);
        (r.status, r.body)
    }
}

// ==== xDS: an in-process server that plays the Cilium agent ====

/// The Cilium agent's xDS side, played by `portcullis_xds::server::XdsCache` on a
/// unix socket, on a runtime of its own so tests can stop and restart it.
pub struct Agent {
    pub rt: tokio::runtime::Runtime,
    pub cache: std::sync::Arc<portcullis_xds::server::XdsCache>,
    pub socket: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Agent {
    pub fn start(socket: &Path) -> Agent {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let cache = std::sync::Arc::new(portcullis_xds::server::XdsCache::new());
        let listener = {
            let _guard = rt.enter();
            portcullis_xds::server::bind_unix(socket).expect("bind the agent's socket")
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(portcullis_xds::server::serve(
            cache.clone(),
            portcullis_xds::server::XdsListener::from(listener),
            async {
                let _ = rx.await;
            },
        ));
        Agent {
            rt,
            cache,
            socket: socket.to_path_buf(),
            stop: Some(tx),
        }
    }

    /// The `--xds` target for Portcullis.
    pub fn target(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// Waits up to 10 s for `fut` on the agent's runtime.
    pub fn wait<T>(&self, what: &str, fut: impl std::future::Future<Output = T>) -> T {
        // The timer must be made inside the runtime, hence the async block.
        self.rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), fut).await })
            .unwrap_or_else(|_| panic!("agent: timed out waiting for {what}"))
    }

    /// Stops serving: open streams end, the socket closes.
    pub fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.rt.shutdown_timeout(Duration::from_secs(2));
    }
}

/// The agent's NPDS and NPHDS resources for `policy` (CNP YAML) and
/// `inventory` (YAML of `cnp::Inventory`), as the agent would translate them.
pub fn agent_resources(
    inventory: &str,
    policy: &str,
) -> (
    Vec<npds::proto::NetworkPolicy>,
    Vec<npds::proto::NetworkPolicyHosts>,
) {
    let inv: cnp::Inventory = serde_yaml_ng::from_str(inventory).expect("inventory YAML");
    let docs = cnp::parse_file(Path::new("policy.yaml"), policy).expect("policy YAML");
    let t = cnp::translate(&inv, &docs).expect("translate");
    (t.network_policies, t.hosts)
}

/// An HTTP/1.1 keep-alive connection from a chosen source address, for
/// requests that must share one connection.
pub struct KeepAlive {
    stream: TcpStream,
}

impl KeepAlive {
    pub fn connect(source: std::net::IpAddr, to: SocketAddr) -> KeepAlive {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&SocketAddr::new(source, 0).into()).unwrap();
        sock.connect(&to.into()).unwrap();
        let stream: TcpStream = sock.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        KeepAlive { stream }
    }

    /// One GET; `Err` when the connection is closed or reset.
    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<(u16, String)> {
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        write!(
            self.stream,
            "GET {path} HTTP/1.1\r\nHost: echo\r\n{extra}\r\n"
        )?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if self.stream.read(&mut byte)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed",
                ));
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

// ==== Benchmarks (tests/examples/xds_bench.rs) ====

impl Portcullis {
    /// The process id of the running binary, for `/proc/<pid>/status`.
    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }
}

// ==== Editing agent resources in tests and benchmarks ====

/// The `:path` safe-regex matchers of every HTTP rule in `np`.
pub fn path_regexes(np: &mut npds::proto::NetworkPolicy) -> Vec<&mut String> {
    use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
    use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
    let mut out = Vec::new();
    for port in np
        .ingress_per_port_policies
        .iter_mut()
        .chain(np.egress_per_port_policies.iter_mut())
    {
        for rule in &mut port.rules {
            if let Some(npds::proto::port_network_policy_rule::L7::HttpRules(h)) = &mut rule.l7 {
                for r in &mut h.http_rules {
                    for m in r.headers.iter_mut().filter(|m| m.name == ":path") {
                        if let Some(HeaderMatchSpecifier::StringMatch(sm)) =
                            &mut m.header_match_specifier
                        {
                            if let Some(MatchPattern::SafeRegex(re)) = &mut sm.match_pattern {
                                out.push(&mut re.regex);
                            }
                        }
                    }
                }
            }
        }
    }
    out
}
