//! Access log: one JSON line per HTTP request, Kafka request, DNS query
//! and refused connection.
//!
//! Events go through a bounded channel to one writer task, so the data path
//! never blocks on disk; when the writer falls behind, events are dropped
//! and counted (`portcullis_access_log_dropped_total`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::mpsc;

/// Events waiting for the writer; beyond this they are dropped.
const QUEUE: usize = 16 * 1024;

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Event {
    Http(HttpEvent),
    Connection(ConnectionEvent),
    Kafka(crate::kafka::KafkaEvent),
    Dns(crate::dns::DnsEvent),
}

#[derive(Debug, Serialize)]
pub struct Peers {
    pub direction: &'static str,
    pub listener: Arc<str>,
    pub src_identity: u32,
    pub src: SocketAddr,
    pub dst_identity: u32,
    pub dst: SocketAddr,
}

#[derive(Debug, Serialize)]
pub struct HttpEvent {
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    #[serde(flatten)]
    pub peers: Arc<Peers>,
    pub protocol: &'static str,
    #[serde(serialize_with = "method_str")]
    pub method: http::Method,
    pub path: String,
    pub host: String,
    pub status: u16,
    pub verdict: &'static str,
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected_headers: Vec<(String, String)>,
    pub latency_us: u64,
}

#[derive(Debug, Serialize)]
pub struct ConnectionEvent {
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    #[serde(flatten)]
    pub peers: Arc<Peers>,
    pub verdict: &'static str,
    pub rule: String,
    pub reason: String,
}

pub fn now() -> SystemTime {
    SystemTime::now()
}

fn method_str<S: serde::Serializer>(m: &http::Method, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

/// Formatting happens on the writer thread, off the request path.
pub(crate) fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_micros(*t))
}

#[derive(Clone)]
pub struct AccessLog {
    tx: Option<mpsc::Sender<Event>>,
}

impl AccessLog {
    /// Starts the writer thread: `-` is stdout, `off` is no log at all,
    /// anything else a file appended to.
    pub fn start(target: &PathBuf) -> std::io::Result<Self> {
        if target.as_os_str() == "off" {
            return Ok(AccessLog { tx: None });
        }
        let out: Box<dyn Write + Send> = if target.as_os_str() == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(target)?,
            )
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_loop(rx, out))?;
        Ok(AccessLog { tx: Some(tx) })
    }

    /// Whether events are written at all (`accessLog: off` says no), so
    /// that hot paths need not build events nobody reads.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues an event; returns false when it had to be dropped.
    pub fn log(&self, event: Event) -> bool {
        match &self.tx {
            None => true,
            Some(tx) => tx.try_send(event).is_ok(),
        }
    }
}

/// The writer drains the queue on a tick rather than being woken for every
/// event: at tens of thousands of requests a second a wake-up per event costs
/// more CPU than the logging itself.
const DRAIN_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

fn write_loop(mut rx: mpsc::Receiver<Event>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    loop {
        let mut wrote = false;
        loop {
            match rx.try_recv() {
                Ok(e) => {
                    if serde_json::to_writer(&mut out, &e).is_ok() {
                        let _ = out.write_all(b"\n");
                    }
                    wrote = true;
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    let _ = out.flush();
                    return;
                }
            }
        }
        if wrote {
            if let Err(e) = out.flush() {
                tracing::warn!(error = %e, "access log write failed");
            }
        }
        std::thread::sleep(DRAIN_EVERY);
    }
}
