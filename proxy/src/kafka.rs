//! Kafka connections: every request decoded and judged, allowed requests
//! forwarded byte for byte, denied ones answered with an authorization error
//! in their place, and responses kept in request order.
//!
//! Two halves run side by side on the connection's task. The request half
//! reads frames from the client, judges each under the policy current at
//! that moment, forwards or answers it, and queues a slot per request that
//! expects a response: "the broker's next response" or "this local answer".
//! The response half takes slots in order: for a broker slot it streams the
//! broker's next response through (checking its correlation ID), for a local
//! one it writes the prepared answer. A denied request behind requests still
//! at the broker therefore waits its turn, and the client sees responses in
//! the order it sent requests. The slot queue is bounded; when it is full the
//! request half stops reading (backpressure, not buffering).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use l7_kafka::api::api_key_name;
use l7_kafka::frame::{FrameError, FrameReader, StreamFrames};
use l7_kafka::kafka_protocol::messages::{ApiKey, MetadataResponse, ResponseHeader, ResponseKind};
use l7_kafka::kafka_protocol::protocol::Encodable;
use l7_kafka::{Request, RequestView, TopicRef};
use npds::L7Rules;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, info};
use uuid::Uuid;

use crate::access_log::{self, Event, Peers};
use crate::conn::ConnInfo;
use crate::splice::Pipe;
use crate::state::Shared;

/// Kafka limits and learned state shared by all connections.
pub struct KafkaState {
    /// Largest request or buffered response accepted, in bytes.
    pub max_frame: AtomicUsize,
    /// Requests a connection may have waiting for their responses.
    pub max_in_flight: AtomicUsize,
    /// Smallest Produce frame spliced rather than copied (0: never).
    pub splice_min: AtomicUsize,
    /// Topic ID → name, learned from responses, per broker identity.
    topic_ids: Mutex<HashMap<(u32, Uuid), Arc<str>>>,
}

/// Kafka's own `max.request.size` is 1 MiB and librdkafka's
/// `message.max.bytes` about 1 MB: 16 MiB leaves room for large batches.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;
/// librdkafka keeps at most 1,000,000 requests in flight per broker; Java
/// clients 5. 1024 pipelined requests is plenty and bounds the queue.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// Learned topic IDs kept; the table starts over when full and is relearned
/// from the next metadata response.
const MAX_TOPIC_IDS: usize = 100_000;

impl Default for KafkaState {
    fn default() -> Self {
        KafkaState {
            max_frame: AtomicUsize::new(DEFAULT_MAX_FRAME),
            max_in_flight: AtomicUsize::new(DEFAULT_MAX_IN_FLIGHT),
            splice_min: AtomicUsize::new(DEFAULT_SPLICE_MIN),
            topic_ids: Mutex::new(HashMap::new()),
        }
    }
}

impl KafkaState {
    pub fn configure(&self, c: &crate::config::KafkaConfig) {
        self.max_frame
            .store(c.max_frame_bytes.max(64), Ordering::Relaxed);
        self.max_in_flight
            .store(c.max_in_flight.max(1), Ordering::Relaxed);
        self.splice_min.store(c.splice_min_bytes, Ordering::Relaxed);
    }

    fn topic_name(&self, broker: u32, id: &Uuid) -> Option<Arc<str>> {
        self.topic_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(broker, *id))
            .cloned()
    }

    fn learn(&self, broker: u32, pairs: Vec<(Uuid, Arc<str>)>) {
        if pairs.is_empty() {
            return;
        }
        let mut map = self.topic_ids.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() + pairs.len() > MAX_TOPIC_IDS {
            map.clear();
        }
        for (id, name) in pairs {
            map.insert((broker, id), name);
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

/// What the response half owes the client next.
enum Slot {
    /// The broker's next response, for this request.
    Broker {
        correlation_id: i32,
        api_key: ApiKey,
        api_version: i16,
    },
    /// An answer made here (a denial).
    Local(Bytes),
    /// A denied Metadata request: the broker's answer, with every topic in
    /// it turned into TOPIC_AUTHORIZATION_FAILED. Clients need the real
    /// broker list and controller even when a topic is refused (librdkafka
    /// drops its group coordinator on a metadata answer without brokers),
    /// so this one denial is the broker's response, scrubbed.
    ScrubMetadata {
        correlation_id: i32,
        api_version: i16,
    },
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
enum Closed {
    #[error("client: {0}")]
    ClientFrame(FrameError),
    #[error("client sent a request that does not parse: {0}")]
    Parse(#[from] l7_kafka::ParseError),
    #[error("broker: {0}")]
    BrokerFrame(FrameError),
    #[error("broker answered correlation ID {got} where {want} was next")]
    OutOfOrder { got: i32, want: i32 },
    #[error("broker response for {key:?} v{version} does not parse: {reason}")]
    BrokerParse {
        key: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("could not build a response for {key:?} v{version}: {reason}")]
    Encode {
        key: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub async fn serve(client: TcpStream, conn: Arc<ConnInfo>, shared: Arc<Shared>) {
    let broker = match crate::upstream::connect(conn.dst, conn.upstream_mark()).await {
        Ok(s) => s,
        Err(e) => {
            shared.metrics.upstream_errors.inc();
            info!(dst = %conn.dst, error = %e, "kafka: broker connect failed");
            return;
        }
    };
    let max_frame = shared.kafka.max_frame.load(Ordering::Relaxed);
    let (slots_tx, slots_rx) = mpsc::channel(shared.kafka.max_in_flight.load(Ordering::Relaxed));
    let (client_rd, client_wr) = client.into_split();
    let (broker_rd, broker_wr) = broker.into_split();
    let requests = request_half(
        FrameReader::new(client_rd, max_frame),
        broker_wr,
        slots_tx,
        &conn,
        &shared,
    );
    let responses = response_half(
        StreamFrames::new(BufReader::with_capacity(64 * 1024, broker_rd), max_frame),
        client_wr,
        slots_rx,
        &conn,
        &shared,
    );
    tokio::pin!(requests, responses);
    // The request half ending (client done) lets the response half drain
    // what is owed; the response half ending (broker gone or misbehaving)
    // ends the connection.
    let result = tokio::select! {
        r = &mut requests => match r {
            Ok(()) => responses.await,
            Err(e) => Err(e),
        },
        r = &mut responses => r,
    };
    if let Err(e) = result {
        match e {
            Closed::Io(e) => debug!(src = %conn.peers.src, error = %e, "kafka: connection ended"),
            e => {
                shared.metrics.kafka_closed.inc();
                info!(src = %conn.peers.src, dst = %conn.dst, error = %e, "kafka: closing connection");
            }
        }
    }
}

/// `kafka.spliceMinBytes`: a Produce frame at least this large, naming one
/// topic, is judged from its head, and when allowed its record batches go
/// from the client's socket to the broker's with `splice(2)`, never copied
/// through this process. Off (0) by default: splicing cuts this process'
/// CPU per GB by a quarter to 40 %, but a broker on the same kernel
/// (loopback, or a veth on an ingress redirect) then receives page
/// fragments it cannot coalesce, is woken twice as often and mostly spends
/// more CPU than the proxy saved; in bench/kafka.sh end-to-end produce
/// throughput was equal or better with copying. Worth turning on where the
/// proxy's CPU is the limit and the broker is on another host.
pub const DEFAULT_SPLICE_MIN: usize = 0;
/// How much of a large frame is read before deciding: a Produce head is
/// the request header (with the client ID) and the first topic's name.
const PRODUCE_HEAD: usize = 4096;

/// Responses up to this size are read whole and written in one system
/// call; larger ones (Fetch) stream through in pieces.
const WHOLE_RESPONSE: usize = 16 * 1024;

fn client_error(e: FrameError) -> Closed {
    match e {
        FrameError::Io(e) => Closed::Io(e),
        e => Closed::ClientFrame(e),
    }
}

async fn request_half(
    mut client: FrameReader<tokio::net::tcp::OwnedReadHalf>,
    mut broker: tokio::net::tcp::OwnedWriteHalf,
    slots: mpsc::Sender<Slot>,
    conn: &ConnInfo,
    shared: &Shared,
) -> Result<(), Closed> {
    let splice_min = match shared.kafka.splice_min.load(Ordering::Relaxed) {
        0 => usize::MAX,
        n => n,
    };
    // Made on the first large Produce; without one, frames are copied.
    let mut pipe: Option<Result<Pipe, ()>> = None;
    loop {
        let Some(size) = client.fill_head(PRODUCE_HEAD).await.map_err(client_error)? else {
            let _ = broker.shutdown().await;
            return Ok(());
        };
        // A large single-topic Produce is judged from its head; allowed, the
        // rest is spliced. A denial needs every partition: read whole.
        let buffered = client.buffered().len();
        let allowed_head = (size >= splice_min && buffered < size)
            .then(|| {
                let head = &client.buffered()[..buffered.min(PRODUCE_HEAD)];
                Request::parse_produce_head(Bytes::copy_from_slice(head))
            })
            .flatten()
            .map(|req| {
                let (verdict, topics) = judge(&req, conn, shared);
                (req, verdict, topics)
            })
            .filter(|(_, verdict, _)| verdict.allowed);
        let head_pipe = allowed_head.as_ref().and_then(|_| {
            pipe.get_or_insert_with(|| {
                Pipe::new().map_err(|e| {
                    info!(src = %conn.peers.src, error = %e, "kafka: no pipe, copying frames");
                })
            })
            .as_ref()
            .ok()
        });
        let (req, verdict, topics, spliced) = match (allowed_head, head_pipe) {
            (Some((req, verdict, topics)), Some(pipe)) => {
                (req, verdict, topics, Some((client.take_buffered(), pipe)))
            }
            _ => {
                let frame = client.read_frame().await.map_err(client_error)?;
                let frame = frame.ok_or(Closed::ClientFrame(FrameError::TruncatedLength))?;
                let req = Request::parse(frame)?;
                let (verdict, topics) = judge(&req, conn, shared);
                (req, verdict, topics, None)
            }
        };
        let expects_response = req.expects_response();
        let mut event = KafkaEvent {
            time: access_log::now(),
            peers: conn.peers.clone(),
            api_key: req.api_key as i16,
            api_name: api_key_name(req.api_key),
            api_version: req.api_version,
            correlation_id: req.correlation_id,
            client_id: req.client_id().to_string(),
            topics,
            verdict: "allowed",
            rule: verdict.rule,
            error_code: None,
        };
        if verdict.allowed {
            shared.metrics.kafka_request(req.api_key, true);
            if expects_response {
                let slot = Slot::Broker {
                    correlation_id: req.correlation_id,
                    api_key: req.api_key,
                    api_version: req.api_version,
                };
                if slots.send(slot).await.is_err() {
                    return Ok(());
                }
            }
            match spliced {
                None => broker.write_all(&req.frame).await?,
                Some((head, pipe)) => {
                    let rest = size - head.len();
                    pipe.relay(&head, client.get_mut().as_ref(), broker.as_ref(), rest)
                        .await
                        .map_err(|e| match e.kind() {
                            // The client hung up inside its frame.
                            std::io::ErrorKind::UnexpectedEof => {
                                Closed::ClientFrame(FrameError::Io(e))
                            }
                            _ => Closed::Io(e),
                        })?;
                    shared.metrics.kafka_spliced_bytes.inc_by(rest as u64);
                }
            }
        } else {
            shared.metrics.kafka_request(req.api_key, false);
            event.verdict = "denied";
            let Some(denial) = l7_kafka::deny::deny(&req.body, req.response_version()) else {
                return Err(Closed::Encode {
                    key: req.api_key,
                    version: req.api_version,
                    reason: "no denial is known for this request kind".into(),
                });
            };
            event.error_code = Some(denial.error_code);
            debug!(src = %conn.peers.src, key = ?req.api_key, topics = ?event.topics, "kafka: request denied");
            if req.api_key == ApiKey::Metadata {
                let slot = Slot::ScrubMetadata {
                    correlation_id: req.correlation_id,
                    api_version: req.api_version,
                };
                if slots.send(slot).await.is_err() {
                    return Ok(());
                }
                broker.write_all(&req.frame).await?;
            } else if expects_response {
                let answer = encode_response(&req, &denial.response)?;
                if slots.send(Slot::Local(answer)).await.is_err() {
                    return Ok(());
                }
            }
        }
        shared.access_log.log(Event::Kafka(event));
    }
}

struct Judgement {
    allowed: bool,
    rule: String,
}

/// The request under the policy current now. Topic IDs resolve through
/// what this broker identity's responses taught; an unknown ID stays
/// unknown, which only a rule without a topic allows.
fn judge(req: &Request, conn: &ConnInfo, shared: &Shared) -> (Judgement, Vec<String>) {
    let broker = conn.peers.dst_identity;
    let refs = req.topics();
    let names: Vec<Option<Arc<str>>> = refs
        .iter()
        .map(|t| match t {
            TopicRef::Name(n) => Some(Arc::from(n.as_str())),
            TopicRef::Id(id) => shared.kafka.topic_name(broker, id),
        })
        .collect();
    let logged = refs
        .iter()
        .zip(&names)
        .map(|(r, n)| match (r, n) {
            (_, Some(n)) => n.to_string(),
            (TopicRef::Id(id), None) => format!("id:{id}"),
            (TopicRef::Name(n), None) => n.to_string(),
        })
        .collect();
    let policy = shared.policy();
    let (rules, remote) = match conn.port_rules(&policy) {
        Ok(x) => x,
        Err(refusal) => {
            return (
                Judgement {
                    allowed: false,
                    rule: refusal.rule,
                },
                logged,
            )
        }
    };
    let topics: Vec<Option<&str>> = names.iter().map(|n| n.as_deref()).collect();
    let view = RequestView {
        api_key: req.api_key as i16,
        api_version: req.api_version,
        client_id: req.client_id(),
        topics: &topics,
    };
    let v = rules.decide(&remote, |l7| match l7 {
        L7Rules::Kafka(k) => k.allows(&view),
        // L3/L4 only: everything on the port is allowed.
        L7Rules::None => true,
        // Another parser's rules on this port: fail closed.
        L7Rules::Http(_) | L7Rules::Generic(_) => false,
    });
    (
        Judgement {
            allowed: v.allowed,
            rule: v.rule_name().to_string(),
        },
        logged,
    )
}

fn encode_response(req: &Request, body: &ResponseKind) -> Result<Bytes, Closed> {
    let version = req.response_version();
    encode_frame(req.api_key, version, req.correlation_id, |out| {
        body.encode(out, version)
    })
}

/// A whole response frame made here: length prefix, the header for `key`
/// at `version`, and the body `encode_body` writes.
fn encode_frame(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    encode_body: impl FnOnce(&mut BytesMut) -> anyhow::Result<()>,
) -> Result<Bytes, Closed> {
    let fail = |e: anyhow::Error| Closed::Encode {
        key,
        version,
        reason: format!("{e:#}"),
    };
    let mut out = BytesMut::with_capacity(64);
    out.extend_from_slice(&[0; 4]);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, key.response_header_version(version))
        .map_err(fail)?;
    encode_body(&mut out).map_err(fail)?;
    let len = i32::try_from(out.len() - 4).map_err(|_| Closed::Encode {
        key,
        version,
        reason: "response over 2 GiB".into(),
    })?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out.freeze())
}

/// The body of a buffered response frame, decoded after its header.
fn decode_body<T>(
    frame: &Bytes,
    key: ApiKey,
    version: i16,
    decode: impl FnOnce(&mut Bytes) -> anyhow::Result<T>,
) -> Result<T, Closed> {
    use l7_kafka::kafka_protocol::protocol::Decodable;
    let parse = |e: anyhow::Error| Closed::BrokerParse {
        key,
        version,
        reason: format!("{e:#}"),
    };
    let mut buf = frame.slice(4..);
    ResponseHeader::decode(&mut buf, key.response_header_version(version)).map_err(parse)?;
    decode(&mut buf).map_err(parse)
}

/// Responses whose topic IDs are worth learning are buffered and decoded;
/// all others stream through.
fn teaches_topic_ids(key: ApiKey) -> bool {
    matches!(
        key,
        ApiKey::Metadata | ApiKey::CreateTopics | ApiKey::DescribeTopicPartitions
    )
}

async fn response_half(
    mut broker: BrokerFrames,
    mut client: tokio::net::tcp::OwnedWriteHalf,
    mut slots: mpsc::Receiver<Slot>,
    conn: &ConnInfo,
    shared: &Shared,
) -> Result<(), Closed> {
    while let Some(slot) = slots.recv().await {
        match slot {
            Slot::Local(bytes) => client.write_all(&bytes).await?,
            Slot::ScrubMetadata {
                correlation_id,
                api_version,
            } => {
                let len = response_len(&mut broker, false).await?;
                let frame = read_whole(&mut broker, len, correlation_id).await?;
                client
                    .write_all(&scrub_metadata(&frame, correlation_id, api_version)?)
                    .await?;
            }
            Slot::Broker {
                correlation_id,
                api_key,
                api_version,
            } => {
                let started = Instant::now();
                let teaches = teaches_topic_ids(api_key);
                let len = response_len(&mut broker, !teaches).await?;
                // A small response goes out in one write (a Produce answer
                // is ~60 bytes); a large one streams through.
                if teaches || len <= WHOLE_RESPONSE {
                    let frame = read_whole(&mut broker, len, correlation_id).await?;
                    if teaches {
                        learn(&frame, api_key, api_version, conn, shared)?;
                    }
                    client.write_all(&frame).await?;
                } else {
                    let mut head = [0u8; 8];
                    head[..4].copy_from_slice(&(len as i32).to_be_bytes());
                    broker.get_mut().read_exact(&mut head[4..]).await?;
                    check_correlation(&head[4..], correlation_id)?;
                    client.write_all(&head).await?;
                    let rest = (len - 4) as u64;
                    let copied =
                        tokio::io::copy_buf(&mut broker.get_mut().take(rest), &mut client).await?;
                    if copied != rest {
                        return Err(Closed::BrokerFrame(FrameError::Truncated {
                            got: copied as usize + 4,
                            len,
                        }));
                    }
                }
                shared.metrics.kafka_response_latency(started.elapsed());
            }
        }
    }
    let _ = client.shutdown().await;
    Ok(())
}

type BrokerFrames = StreamFrames<BufReader<tokio::net::tcp::OwnedReadHalf>>;

/// The next response's length. A streamed response passes whatever its
/// size; a buffered one is held to the frame limit.
async fn response_len(broker: &mut BrokerFrames, streamed: bool) -> Result<usize, Closed> {
    let len = match broker.read_len().await {
        Ok(Some(len)) => len,
        Ok(None) => return Err(Closed::BrokerFrame(FrameError::TruncatedLength)),
        Err(FrameError::Io(e)) => return Err(Closed::Io(e)),
        Err(FrameError::TooLarge { len, .. }) if streamed => len,
        Err(e) => return Err(Closed::BrokerFrame(e)),
    };
    if len < 4 {
        return Err(Closed::BrokerFrame(FrameError::Truncated {
            got: len,
            len: 4,
        }));
    }
    Ok(len)
}

/// A whole response of `len` bytes, checked to answer `correlation_id`.
async fn read_whole(
    broker: &mut BrokerFrames,
    len: usize,
    correlation_id: i32,
) -> Result<Bytes, Closed> {
    let frame = broker.read_body(len).await.map_err(Closed::BrokerFrame)?;
    check_correlation(&frame[4..8], correlation_id)?;
    Ok(frame)
}

/// The broker's Metadata response with every topic refused: error 29, no
/// partitions, no topic ID, no authorized operations.
fn scrub_metadata(frame: &Bytes, correlation_id: i32, version: i16) -> Result<Bytes, Closed> {
    use l7_kafka::kafka_protocol::protocol::Decodable;
    let key = ApiKey::Metadata;
    let mut body = decode_body(frame, key, version, |buf| {
        MetadataResponse::decode(buf, version)
    })?;
    for t in &mut body.topics {
        t.error_code = l7_kafka::kafka_protocol::ResponseError::TopicAuthorizationFailed.code();
        t.partitions.clear();
        t.topic_id = Uuid::nil();
        t.topic_authorized_operations = i32::MIN;
    }
    encode_frame(key, version, correlation_id, |out| {
        body.encode(out, version)
    })
}

fn check_correlation(bytes: &[u8], want: i32) -> Result<(), Closed> {
    let got = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if got == want {
        Ok(())
    } else {
        Err(Closed::OutOfOrder { got, want })
    }
}

fn learn(
    frame: &Bytes,
    key: ApiKey,
    version: i16,
    conn: &ConnInfo,
    shared: &Shared,
) -> Result<(), Closed> {
    let body = decode_body(frame, key, version, |buf| {
        ResponseKind::decode(key, buf, version)
    })?;
    let pairs = l7_kafka::topics::response_topic_ids(&body)
        .into_iter()
        .map(|(id, name)| (id, Arc::from(name.as_str())))
        .collect();
    shared.kafka.learn(conn.peers.dst_identity, pairs);
    Ok(())
}
