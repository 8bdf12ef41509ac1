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
//!
//! The protocol is `l7_kafka`'s (framing, decoding, rules, denials, response
//! encoding, learned topic IDs), all sync; this module is the sockets, the
//! reads the frame decoder asks for, the slot queue, splicing, metrics and
//! the access log.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use l7_kafka::api::api_key_name;
use l7_kafka::frame::{Decoded, Decoder, Frame, FrameError, CHUNK};
use l7_kafka::kafka_protocol::messages::ApiKey;
use l7_kafka::response::{self, ResponseError};
use l7_kafka::{Request, RequestView, TopicRef};
use npds::L7Rules;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::access_log::{self, Event, KafkaEvent};
use crate::conn::ConnInfo;
use crate::splice::Pipe;
use crate::state::Shared;

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
    #[error(transparent)]
    Response(#[from] ResponseError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub async fn serve(client: TcpStream, conn: Arc<ConnInfo>, shared: Arc<Shared>) {
    let broker = match crate::upstream::connect(conn.dst, conn.upstream_mark()).await {
        Ok(s) => s,
        Err(e) => {
            shared.metrics.upstream_errors.inc();
            info!(error = %e, "kafka: broker connect failed");
            return;
        }
    };
    let limits = shared.policy().limits.clone();
    let max_frame = limits.kafka.max_frame;
    let (slots_tx, slots_rx) = mpsc::channel(limits.kafka.max_in_flight);
    let (client_rd, client_wr) = client.into_split();
    let (broker_rd, broker_wr) = broker.into_split();
    let requests = request_half(
        FrameReader::new(client_rd),
        Decoder::new(max_frame),
        broker_wr,
        slots_tx,
        limits.kafka.splice_min,
        &conn,
        &shared,
    );
    let responses = response_half(
        FrameReader::new(broker_rd),
        Decoder::new(max_frame),
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
            Closed::Io(e) => debug!(error = %e, "kafka: connection ended"),
            e => {
                shared.metrics.kafka_closed.inc();
                info!(error = %e, "kafka: closing connection");
            }
        }
    }
}

/// How much of a large frame is read before deciding: a Produce head is
/// the request header (with the client ID) and the first topic's name.
const PRODUCE_HEAD: usize = 4096;

/// Responses up to this size are read whole and written in one system
/// call; larger ones (Fetch) stream through in pieces.
const WHOLE_RESPONSE: usize = 16 * 1024;

/// Reads the frames of one side of a connection: one buffer, filled as a
/// [`Decoder`] asks.
struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    fn new(inner: R) -> Self {
        FrameReader {
            inner,
            buf: BytesMut::new(),
        }
    }

    /// The next frame, whole, or its head once `head` bytes of it are
    /// buffered ([`Decoder::decode`]); `None` at a clean end of stream.
    async fn next(&mut self, decoder: Decoder, head: usize) -> Result<Option<Frame>, FrameError> {
        loop {
            match decoder.decode(&mut self.buf, head)? {
                Decoded::Ready(frame) => return Ok(Some(frame)),
                Decoded::Need(limit) => {
                    self.buf.reserve(limit);
                    let mut read = (&mut self.inner).take(limit as u64);
                    if read.read_buf(&mut self.buf).await? == 0 {
                        return decoder.end(&self.buf).map(|()| None);
                    }
                }
            }
        }
    }

    /// The next frame, whole; `None` at a clean end of stream.
    async fn frame(&mut self, decoder: Decoder) -> Result<Option<Bytes>, FrameError> {
        match self.next(decoder, usize::MAX).await? {
            Some(Frame::Whole(frame)) => Ok(Some(frame)),
            Some(Frame::Head { .. }) => unreachable!("no frame is longer than usize::MAX"),
            None => Ok(None),
        }
    }

    /// What is buffered of the current frame (after a [`Frame::Head`]).
    fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Takes what is buffered of the current frame, for a caller that moves
    /// the rest of it itself, straight from the stream.
    fn take_buffered(&mut self) -> Bytes {
        self.buf.split().freeze()
    }

    /// Writes the current `size`-byte frame (after a [`Frame::Head`]) to
    /// `out`: what is buffered, then the rest a chunk at a time as it
    /// arrives. Bytes read past its end stay for the next frame.
    async fn relay<W: AsyncWrite + Unpin>(
        &mut self,
        size: usize,
        out: &mut W,
    ) -> Result<(), FrameError> {
        let mut rest = size;
        loop {
            let n = rest.min(self.buf.len());
            out.write_all(&self.buf[..n]).await?;
            self.buf.advance(n);
            rest -= n;
            if rest == 0 {
                return Ok(());
            }
            self.buf.reserve(CHUNK);
            if (&mut self.inner)
                .take(CHUNK as u64)
                .read_buf(&mut self.buf)
                .await?
                == 0
            {
                return Err(FrameError::Truncated {
                    got: size - rest - 4,
                    len: size - 4,
                });
            }
        }
    }

    fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

fn client_error(e: FrameError) -> Closed {
    match e {
        FrameError::Io(e) => Closed::Io(e),
        e => Closed::ClientFrame(e),
    }
}

fn broker_error(e: FrameError) -> Closed {
    match e {
        FrameError::Io(e) => Closed::Io(e),
        e => Closed::BrokerFrame(e),
    }
}

async fn request_half(
    mut client: FrameReader<OwnedReadHalf>,
    decoder: Decoder,
    mut broker: OwnedWriteHalf,
    slots: mpsc::Sender<Slot>,
    splice_min: usize,
    conn: &ConnInfo,
    shared: &Shared,
) -> Result<(), Closed> {
    let splice_min = match splice_min {
        0 => usize::MAX,
        n => n,
    };
    // Made on the first large Produce; without one, frames are copied.
    let mut pipe: Option<Result<Pipe, ()>> = None;
    loop {
        let head = client
            .next(decoder, PRODUCE_HEAD)
            .await
            .map_err(client_error)?;
        let (req, verdict, topics, spliced) = match head {
            None => {
                let _ = broker.shutdown().await;
                return Ok(());
            }
            Some(Frame::Whole(frame)) => {
                let req = Request::parse(frame)?;
                let (verdict, topics) = judge(&req, conn, shared);
                (req, verdict, topics, None)
            }
            Some(Frame::Head { size }) => {
                // A large single-topic Produce is judged from its head;
                // allowed, the rest is spliced. A denial needs every
                // partition: read whole.
                let allowed_head = (size >= splice_min)
                    .then(|| {
                        let buffered = client.buffered();
                        let head = &buffered[..buffered.len().min(PRODUCE_HEAD)];
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
                            info!(error = %e, "kafka: no pipe, copying frames");
                        })
                    })
                    .as_ref()
                    .ok()
                });
                match (allowed_head, head_pipe) {
                    (Some((req, verdict, topics)), Some(pipe)) => (
                        req,
                        verdict,
                        topics,
                        Some((client.take_buffered(), pipe, size)),
                    ),
                    _ => {
                        let frame = client.frame(decoder).await.map_err(client_error)?;
                        let frame =
                            frame.ok_or(Closed::ClientFrame(FrameError::TruncatedLength))?;
                        let req = Request::parse(frame)?;
                        let (verdict, topics) = judge(&req, conn, shared);
                        (req, verdict, topics, None)
                    }
                }
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
                Some((head, pipe, size)) => {
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
                return Err(ResponseError::Encode {
                    key: req.api_key,
                    version: req.api_version,
                    reason: "no denial is known for this request kind".into(),
                }
                .into());
            };
            event.error_code = Some(denial.error_code);
            debug!(key = ?req.api_key, topics = ?event.topics, "kafka: request denied");
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
                let answer = response::encode_response(&req, &denial.response)?;
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
    let names = shared.kafka_topic_ids.resolve(broker, &refs);
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

async fn response_half(
    mut broker: FrameReader<OwnedReadHalf>,
    decoder: Decoder,
    mut client: OwnedWriteHalf,
    mut slots: mpsc::Receiver<Slot>,
    conn: &ConnInfo,
    shared: &Shared,
) -> Result<(), Closed> {
    // A response read whole to be decoded is held to the frame limit; the
    // others pass whatever their size.
    let streamed = Decoder::new(i32::MAX as usize);
    while let Some(slot) = slots.recv().await {
        match slot {
            Slot::Local(bytes) => client.write_all(&bytes).await?,
            Slot::ScrubMetadata {
                correlation_id,
                api_version,
            } => {
                let frame = read_whole(&mut broker, decoder, correlation_id).await?;
                let scrubbed = response::scrub_metadata(&frame, correlation_id, api_version)?;
                client.write_all(&scrubbed).await?;
            }
            Slot::Broker {
                correlation_id,
                api_key,
                api_version,
            } => {
                let started = Instant::now();
                if response::teaches_topic_ids(api_key) {
                    let frame = read_whole(&mut broker, decoder, correlation_id).await?;
                    let broker_id = conn.peers.dst_identity;
                    let ids = &shared.kafka_topic_ids;
                    ids.learn(broker_id, &frame, api_key, api_version)?;
                    client.write_all(&frame).await?;
                } else {
                    // A small response goes out in one write (a Produce
                    // answer is ~60 bytes); a large one streams through.
                    let next = broker.next(streamed, 4 + WHOLE_RESPONSE).await;
                    match next.map_err(broker_error)? {
                        None => return Err(Closed::BrokerFrame(FrameError::TruncatedLength)),
                        Some(Frame::Whole(frame)) => {
                            response::check_correlation(&frame, correlation_id)?;
                            client.write_all(&frame).await?;
                        }
                        Some(Frame::Head { size }) => {
                            response::check_correlation(broker.buffered(), correlation_id)?;
                            broker
                                .relay(size, &mut client)
                                .await
                                .map_err(broker_error)?;
                        }
                    }
                }
                shared.metrics.kafka_response_latency(started.elapsed());
            }
        }
    }
    let _ = client.shutdown().await;
    Ok(())
}

/// A whole response, checked to answer `correlation_id`.
async fn read_whole(
    broker: &mut FrameReader<OwnedReadHalf>,
    decoder: Decoder,
    correlation_id: i32,
) -> Result<Bytes, Closed> {
    let frame = broker.frame(decoder).await.map_err(broker_error)?;
    let frame = frame.ok_or(Closed::BrokerFrame(FrameError::TruncatedLength))?;
    response::check_correlation(&frame, correlation_id)?;
    Ok(frame)
}
