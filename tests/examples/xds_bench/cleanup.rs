//! Cleanup on signals.
//!
//! Processes started by the harness are killed when their guards drop (also on
//! a panic). A SIGINT/SIGTERM/SIGHUP to this program alone would skip that, so
//! their pids and temp dirs are registered here and stopped by a signal thread.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use portcullis_tests::Nginx;

use crate::log;

static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Set by the signal thread: the main thread then reports nothing more.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// After a signal the signal thread owns the exit; the main thread (whose
/// phase just failed because its children were killed) waits for it.
pub fn stop_if_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

pub struct Tracked {
    pid: Option<u32>,
    dir: Option<PathBuf>,
}

impl Tracked {
    pub fn pid(pid: u32) -> Tracked {
        CHILDREN.lock().unwrap().push(pid);
        Tracked {
            pid: Some(pid),
            dir: None,
        }
    }

    pub fn dir(dir: &std::path::Path) -> Tracked {
        DIRS.lock().unwrap().push(dir.to_path_buf());
        Tracked {
            pid: None,
            dir: Some(dir.to_path_buf()),
        }
    }

    pub fn nginx(n: &Nginx) -> Tracked {
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

pub fn install_signal_handler() {
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
