//! The `portcullis` binary under test: its directory laid out, started,
//! waited for, and read back (log, access log, metrics, admin endpoints).

use std::fmt::Display;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::{curl_in, free_port, http_get, poll, portcullis_bin, Config, Netns, Proc};

/// A Portcullis whose directory is laid out but which is not running yet.
pub struct Unstarted {
    dir: TempDir,
    config: Config,
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
        let mut pc = Portcullis::launch(
            Command::new(portcullis_bin()),
            self.dir,
            &self.config,
            args,
            admin,
        );
        pc.wait_started("admin listening", || TcpStream::connect(admin).is_ok());
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
    /// Writes `config` (`{admin}` replaced by a free admin address) and its
    /// files into a temp dir and starts the binary there; returns once the
    /// admin listener accepts.
    pub fn start(config: &Config) -> Portcullis {
        Self::start_with_args(config, &[])
    }

    /// `start`, with extra command-line arguments for `portcullis run`.
    pub fn start_with_args(config: &Config, args: &[&str]) -> Portcullis {
        Self::start_in_dir(tempfile::tempdir().unwrap(), config).with_args_started(args)
    }

    /// `start` in a directory the caller prepared (with a FIFO as
    /// `access.log`, say).
    pub fn start_in_dir(dir: TempDir, config: &Config) -> Unstarted {
        Unstarted {
            dir,
            config: config.clone(),
        }
    }

    /// Writes the config's files and the config (`{admin}` replaced, an
    /// access log added) into `dir` and spawns `program run --config ... args`.
    fn launch(
        mut program: Command,
        dir: TempDir,
        config: &Config,
        args: &[&str],
        admin: SocketAddr,
    ) -> Portcullis {
        for (name, content) in config.files() {
            let p = dir.path().join(name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(p, content).unwrap();
        }
        let config = config.yaml().replace("{admin}", &admin.to_string());
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
    fn wait_started(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        let started = poll(Duration::from_secs(10), || {
            if ready() {
                Some(true)
            } else {
                (!self.is_running()).then_some(false)
            }
        });
        match started {
            Some(true) => {}
            Some(false) => panic!("portcullis exited; log:\n{}", self.log()),
            None => panic!("portcullis: not {what} after 10 s; log:\n{}", self.log()),
        }
    }

    /// Polls `done` until it holds; panics naming `what`, with the log, when
    /// `timeout` runs out first.
    pub fn wait_until(
        &self,
        what: impl Display,
        timeout: Duration,
        mut done: impl FnMut() -> bool,
    ) {
        if poll(timeout, || done().then_some(())).is_none() {
            panic!(
                "timed out after {timeout:?} waiting for {what}; portcullis log:\n{}",
                self.log()
            );
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Waits up to 10 s until `/ready` says 200.
    pub fn wait_ready(&self) {
        self.wait_until("/ready", Duration::from_secs(10), || {
            self.admin_get("/ready").0 == 200
        });
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

    /// Like `start`, inside `ns`; the admin listener is 127.0.0.1:9901 of
    /// that namespace (use `admin_get_in`). Returns once `/ready` is 200.
    pub fn start_in(ns: &Netns, config: &Config) -> Portcullis {
        let admin = SocketAddr::from(([127, 0, 0, 1], 9901));
        let bin = portcullis_bin();
        let program = ns.command(bin.to_str().expect("utf-8 binary path"));
        let mut pc = Self::launch(program, tempfile::tempdir().unwrap(), config, &[], admin);
        let url = format!("http://{admin}/ready");
        pc.wait_started(&format!("ready in netns {}", ns.name), || {
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

    /// The process id of the running binary, for `/proc/<pid>/status`.
    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }
}
