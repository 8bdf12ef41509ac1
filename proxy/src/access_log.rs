//! Access log: one JSON line per HTTP request, Kafka request, DNS query
//! and refused connection.
//!
//! Events go through a bounded channel to one writer task, so the data path
//! never blocks on disk; when the writer falls behind, events are dropped
//! and counted (`portcullis_access_log_dropped_total`).

use std::borrow::Cow;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::mpsc;

/// Events waiting for the writer; beyond this they are dropped.
const QUEUE: usize = 16 * 1024;

/// One line of the log: `{"kind":…,"time":…,` then the connection's peers
/// (where the event has them) and the event's own fields, in that order.
#[derive(Debug, Serialize)]
#[serde(untagged)] // serializes the event's own fields; `LineWriter` adds the rest
pub enum Event {
    Http(HttpEvent),
    Connection(ConnectionEvent),
    Kafka(KafkaEvent),
    Dns(DnsEvent),
}

#[derive(Debug, Serialize)]
pub struct Peers {
    pub direction: &'static str,
    pub listener: Arc<str>,
    pub src_identity: u32,
    pub src: SocketAddr,
    pub dst_identity: u32,
    pub dst: SocketAddr,
    /// These fields as JSON members, rendered by the writer the first time
    /// and reused for every later event of the connection.
    #[serde(skip)]
    pub json: std::sync::OnceLock<Box<str>>,
}

impl Peers {
    fn json_members(&self) -> &str {
        self.json.get_or_init(|| {
            let object = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
            object[1..object.len() - 1].into()
        })
    }
}

#[derive(Debug, Serialize)]
pub struct HttpEvent {
    #[serde(skip)]
    pub time: SystemTime,
    #[serde(skip)]
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
    #[serde(skip)]
    pub time: SystemTime,
    #[serde(skip)]
    pub peers: Arc<Peers>,
    pub verdict: &'static str,
    pub rule: String,
    pub reason: String,
}

/// One DNS access-log event.
#[derive(Debug, Serialize)]
pub struct DnsEvent {
    #[serde(skip)]
    pub time: SystemTime,
    pub listener: Arc<str>,
    pub protocol: &'static str,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub endpoint: Option<u64>,
    pub src_identity: u32,
    pub dst_identity: u32,
    pub name: String,
    pub qtype: String,
    pub verdict: &'static str,
    pub rule: Arc<str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub reason: Cow<'static, str>,
    pub rcode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_latency_us: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
}

impl DnsEvent {
    /// An event about a query from `src` to `dst`, with the parties as
    /// policy sees them; what became of the query is filled in by the caller.
    pub fn new(
        listener: &Arc<str>,
        protocol: &'static str,
        src: SocketAddr,
        dst: SocketAddr,
        parties: l7_dns::Parties,
    ) -> Self {
        DnsEvent {
            time: SystemTime::now(),
            listener: listener.clone(),
            protocol,
            src,
            dst,
            endpoint: parties.endpoint.map(|e| e.id),
            src_identity: parties.endpoint.map_or(0, |e| e.identity),
            dst_identity: parties.server_identity,
            name: String::new(),
            qtype: String::new(),
            verdict: "",
            rule: Arc::default(),
            reason: Cow::Borrowed(""),
            rcode: String::new(),
            upstream_latency_us: None,
            ips: Vec::new(),
            ttl: None,
        }
    }
}

/// One access-log event per request.
#[derive(Debug, Serialize)]
pub struct KafkaEvent {
    #[serde(skip)]
    pub time: std::time::SystemTime,
    #[serde(skip)]
    pub peers: Arc<Peers>,
    pub api_key: i16,
    pub api_name: &'static str,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: String,
    pub topics: Vec<String>,
    pub verdict: &'static str,
    pub rule: String,
    /// The error code a denied request was answered with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i16>,
}

pub fn now() -> SystemTime {
    SystemTime::now()
}

fn method_str<S: serde::Serializer>(m: &http::Method, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

#[derive(Clone)]
pub struct AccessLog {
    tx: Option<mpsc::Sender<Event>>,
    /// Every event that did not fit the queue.
    dropped: prometheus_client::metrics::counter::Counter,
}

impl AccessLog {
    /// Starts the writer thread: `-` is stdout, `off` is no log at all,
    /// anything else a file appended to.
    pub fn start(target: &PathBuf) -> std::io::Result<Self> {
        if target.as_os_str() == "off" {
            return Ok(AccessLog {
                tx: None,
                dropped: Default::default(),
            });
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
        Ok(AccessLog {
            tx: Some(tx),
            dropped: Default::default(),
        })
    }

    /// Counts drops in `counter` (`portcullis_access_log_dropped_total`).
    pub fn count_drops_in(&mut self, counter: prometheus_client::metrics::counter::Counter) {
        self.dropped = counter;
    }

    /// Whether events are written at all (`accessLog: off` says no), so
    /// that hot paths need not build events nobody reads.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues an event; one that does not fit is dropped and counted.
    pub fn log(&self, event: Event) {
        if let Some(tx) = &self.tx {
            if tx.try_send(event).is_err() {
                self.dropped.inc();
            }
        }
    }
}

/// The writer drains the queue on a tick rather than being woken for every
/// event: at tens of thousands of requests a second a wake-up per event costs
/// more CPU than the logging itself.
const DRAIN_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

fn write_loop(mut rx: mpsc::Receiver<Event>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let mut lines = LineWriter::default();
    loop {
        let mut wrote = false;
        loop {
            match rx.try_recv() {
                Ok(e) => {
                    lines.write(&mut out, &e);
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

/// Formats events as JSON lines. Formatting happens on the writer thread,
/// off the request path; what repeats is formatted once: a connection's
/// peers once per connection, the timestamp's date and time once a second.
#[derive(Default)]
struct LineWriter {
    body: Vec<u8>,
    /// `YYYY-MM-DDTHH:MM:SS` of `second` (seconds since the epoch).
    second: u64,
    date_time: String,
}

impl LineWriter {
    fn write(&mut self, out: &mut impl Write, event: &Event) {
        self.body.clear();
        let (kind, time, peers) = match event {
            Event::Http(e) => ("http", e.time, Some(&e.peers)),
            Event::Connection(e) => ("connection", e.time, Some(&e.peers)),
            Event::Kafka(e) => ("kafka", e.time, Some(&e.peers)),
            Event::Dns(e) => ("dns", e.time, None),
        };
        let body = serde_json::to_writer(&mut self.body, event);
        if let Err(e) = body {
            tracing::warn!(error = %e, kind, "access log event not written");
            return;
        }
        let _ = write!(out, "{{\"kind\":\"{kind}\",\"time\":\"");
        self.write_time(out, time);
        let _ = out.write_all(b"\"");
        if let Some(peers) = peers {
            let _ = out.write_all(b",");
            let _ = out.write_all(peers.json_members().as_bytes());
        }
        // The event's own members: its object without the opening brace.
        if self.body.len() > 2 {
            let _ = out.write_all(b",");
        }
        let _ = out.write_all(&self.body[1..]);
        let _ = out.write_all(b"\n");
    }

    /// RFC 3339 in UTC with microseconds, as `humantime::format_rfc3339_micros`.
    fn write_time(&mut self, out: &mut impl Write, time: SystemTime) {
        let since = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        if self.date_time.is_empty() || since.as_secs() != self.second {
            self.second = since.as_secs();
            let whole = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(self.second);
            self.date_time = humantime::format_rfc3339_seconds(whole).to_string();
            self.date_time.pop(); // the 'Z'
        }
        let mut frac = *b".000000Z";
        let mut micros = since.subsec_micros();
        for d in frac[1..7].iter_mut().rev() {
            *d = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        let _ = out.write_all(self.date_time.as_bytes());
        let _ = out.write_all(&frac);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(event: &Event) -> serde_json::Value {
        let mut out = Vec::new();
        LineWriter::default().write(&mut out, event);
        assert_eq!(out.last(), Some(&b'\n'));
        serde_json::from_slice(&out).expect("one JSON object per line")
    }

    #[test]
    fn lines_carry_kind_time_peers_and_fields_in_order() {
        let peers = Arc::new(Peers {
            direction: "ingress",
            listener: "web".into(),
            src_identity: 100,
            src: "10.0.0.1:40000".parse().unwrap(),
            dst_identity: 200,
            dst: "[fd00::2]:80".parse().unwrap(),
            json: Default::default(),
        });
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_763_780_112_000_042);
        let event = Event::Connection(ConnectionEvent {
            time,
            peers: peers.clone(),
            verdict: "denied",
            rule: "r\"1".into(),
            reason: "no rule".into(),
        });
        let mut out = Vec::new();
        let mut w = LineWriter::default();
        w.write(&mut out, &event);
        w.write(&mut out, &event); // the cached peers and second, reused
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        let first = lines.next().unwrap();
        assert_eq!(Some(first), lines.next());
        assert_eq!(
            first,
            concat!(
                r#"{"kind":"connection","time":"2025-11-22T02:55:12.000042Z","#,
                r#""direction":"ingress","listener":"web","src_identity":100,"src":"10.0.0.1:40000","#,
                r#""dst_identity":200,"dst":"[fd00::2]:80","verdict":"denied","rule":"r\"1","reason":"no rule"}"#
            )
        );
        assert_eq!(
            humantime::format_rfc3339_micros(time).to_string(),
            "2025-11-22T02:55:12.000042Z"
        );
        assert_eq!(line(&event)["rule"], "r\"1");
    }
}
