//! The embedded MQTT listener: provdb terminates camflowd's MQTT 3.1.1 connections itself, so
//! that a PUBLISH at QoS 1 or 2 is acknowledged (PUBACK / PUBREC) only after its records are
//! durable in the archive. A general broker (rumqttd) acknowledges on receipt, in memory, and
//! a kill -9 then loses what it had acknowledged.
//!
//! What a publisher needs is implemented: CONNECT (user name and password checked against a
//! mosquitto_passwd file when one is given; TLS when a certificate is given), PUBLISH at QoS
//! 0, 1 and 2, PUBREL/PUBCOMP, PINGREQ, DISCONNECT, persistent sessions (a client that
//! connects without clean session is told its session is present, so it resends what was not
//! acknowledged) and session take-over by client id.
//!
//! Subscribers get provdb's alerts (see [`super::alerts`]), nothing else: SUBSCRIBE grants a
//! valid filter (`+` and `#` wildcards) that can match an alert topic `<prefix><machine>` at
//! min(requested QoS, 1) and refuses any other with the failure code; UNSUBSCRIBE removes
//! filters. An alert goes to each matching connection once, at the granted QoS (QoS 1 with a
//! packet id; the subscriber's PUBACK is taken, a message it does not acknowledge is not sent
//! again). Delivery is live: subscriptions last as long as the connection (subscribe again
//! on every connection) and nothing is kept for a disconnected subscriber; the archive
//! (`provdb alerts`) is the durable record. What clients publish is never forwarded to
//! subscribers, so no client can forge an alert. A subscriber passes the same password and
//! TLS checks and connection limits as a publisher, and a slow one never holds ingest up:
//! its queue is bounded (alerts beyond are dropped, counted and logged), at most 64 QoS 1
//! messages wait for its PUBACK, and one that takes no message for 10 s is disconnected.
//!
//! Every connection is bounded: a packet larger than the payload limit closes it, a client
//! that sends nothing for 1.5 keep-alive periods is dropped, CONNECT must come within 10 s,
//! and a TLS handshake within 10 s.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::pipeline::Feeder;
use bytes::BytesMut;
use parking_lot::Mutex;
use rumqttc::tokio_rustls::{rustls, TlsAcceptor};
use rumqttc::{
    ConnAck, ConnectReturnCode, Packet, Protocol, PubAck, PubComp, PubRec, Publish, QoS, SubAck,
    SubscribeReasonCode, UnsubAck,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::alerts::{AlertHub, Delivery, SUBSCRIBER_QUEUE};
use super::passwords::{PasswordFile, PasswordFileError};
use super::service::{now_ms, send_with_backpressure, Ack, Incoming, IngestStats};
use super::tls;

/// Largest MQTT packet the listener accepts (camflowd documents are well below 1 MiB).
pub const MAX_PACKET_BYTES: usize = 16 << 20;
/// Most connections at once; further ones are closed at once.
const MAX_CONNECTIONS: usize = 10_000;
/// Time a client has to send CONNECT (and to finish a TLS handshake).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a subscriber may take to accept one alert message: one that stops reading is
/// disconnected rather than holding its connection (and shutdown) forever.
const ALERT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// QoS 1 alert messages sent to one subscriber and not yet acknowledged; while that many
/// wait, its queue fills instead (and then drops).
const MAX_ALERTS_INFLIGHT: usize = 64;

/// Who may connect to the embedded listener, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerSecurity {
    /// mosquitto_passwd file: only its users may connect.
    pub password_file: Option<PathBuf>,
    /// PEM certificate chain: the listener speaks TLS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Accept clients without a password on an address other than loopback.
    pub allow_anonymous: bool,
}

/// Why the listener cannot start: each is a setting to fix, not something to retry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenerError {
    /// Listening on a non-loopback address with no password file.
    #[error(
        "refusing to listen on {listen} without authentication: anyone who can reach it could \
         write provenance for any machine. Give --password-file FILE (made with \
         mosquitto_passwd), or --allow-anonymous if the network is trusted"
    )]
    Unauthenticated {
        /// The address.
        listen: SocketAddr,
    },
    /// The password file is unusable.
    #[error(transparent)]
    Passwords(#[from] PasswordFileError),
    /// Only one of certificate and key was given.
    #[error("--tls-cert and --tls-key go together")]
    TlsIncomplete,
    /// The certificate or key could not be read or used.
    #[error("TLS {what} {path}: {detail}")]
    Tls {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The address could not be bound.
    #[error("cannot listen on {listen}: {source}")]
    Bind {
        /// The address.
        listen: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// A listener's settings after its files have been read and checked.
pub(crate) struct ListenerSetup {
    listen: SocketAddr,
    passwords: Option<PasswordFile>,
    tls: Option<TlsAcceptor>,
}

impl ListenerSetup {
    /// Reads and checks everything the listener needs before anything is started.
    pub(crate) fn prepare(
        listen: SocketAddr,
        security: &ListenerSecurity,
    ) -> Result<ListenerSetup, ListenerError> {
        if security.password_file.is_none()
            && !security.allow_anonymous
            && !listen.ip().is_loopback()
        {
            return Err(ListenerError::Unauthenticated { listen });
        }
        let passwords = match &security.password_file {
            Some(p) => Some(PasswordFile::read(p)?),
            None => None,
        };
        let tls = match (&security.tls_cert, &security.tls_key) {
            (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
            (None, None) => None,
            _ => return Err(ListenerError::TlsIncomplete),
        };
        Ok(ListenerSetup {
            listen,
            passwords,
            tls,
        })
    }
}

fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ListenerError> {
    let fail = |what, path: &Path, detail: String| ListenerError::Tls {
        what,
        path: path.to_path_buf(),
        detail,
    };
    let certs = tls::certificates(cert).map_err(|p| fail("certificate", cert, p.to_string()))?;
    let private_key = tls::private_key(key).map_err(|p| fail("key", key, p.to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| fail("certificate", cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| fail("key", key, e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A request to the session keeper: record (or forget) a client's persistent session and
/// answer whether one was present.
pub(crate) struct SessionRequest {
    pub(crate) client_id: String,
    pub(crate) clean_session: bool,
    pub(crate) reply: oneshot::Sender<bool>,
}

/// Everything the connections share.
struct Shared {
    passwords: Option<PasswordFile>,
    /// Alert subscriptions (`None`: alert publishing is off, every SUBSCRIBE is refused).
    hub: Option<Arc<AlertHub>>,
    stats: Arc<IngestStats>,
    sessions: std::sync::mpsc::Sender<SessionRequest>,
    /// Connected clients by id, so a new connection with the same id takes over.
    clients: Mutex<HashMap<String, (u64, Arc<Notify>)>>,
    next_connection: AtomicU64,
    connections: AtomicU64,
    /// Peers whose failed handshakes were already logged (logged once each).
    logged_refusals: Mutex<HashSet<String>>,
}

impl Shared {
    /// Logs a refused client once per peer address and reason (a client retrying forever with
    /// a wrong password must not flood the log).
    fn log_refusal(&self, peer: SocketAddr, reason: &str) {
        let key = format!("{} {reason}", peer.ip());
        let mut logged = self.logged_refusals.lock();
        if logged.len() < 10_000 && logged.insert(key) {
            tracing::warn!("refused a client from {peer}: {reason}");
        }
    }
}

/// Accepts connections until `stop` turns true, then lets every connection finish
/// acknowledging what is in flight. Returns when all connections are closed.
pub(crate) async fn serve(
    setup: ListenerSetup,
    raw_tx: Feeder<Incoming>,
    sessions: std::sync::mpsc::Sender<SessionRequest>,
    hub: Option<Arc<AlertHub>>,
    stats: Arc<IngestStats>,
    mut stop: watch::Receiver<bool>,
    ready: impl FnOnce(),
) -> Result<(), ListenerError> {
    let listener = tokio::net::TcpListener::bind(setup.listen)
        .await
        .map_err(|source| ListenerError::Bind {
            listen: setup.listen,
            source,
        })?;
    ready();
    tracing::info!(
        "MQTT listener on {}{}{}",
        setup.listen,
        if setup.tls.is_some() { " (TLS)" } else { "" },
        if setup.passwords.is_some() {
            ", password file required"
        } else {
            ""
        }
    );
    let shared = Arc::new(Shared {
        passwords: setup.passwords,
        hub,
        stats,
        sessions,
        clients: Mutex::new(HashMap::new()),
        next_connection: AtomicU64::new(0),
        connections: AtomicU64::new(0),
        logged_refusals: Mutex::new(HashSet::new()),
    });
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, do not spin.
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if shared.connections.load(Ordering::Relaxed) >= MAX_CONNECTIONS as u64 {
                    shared.log_refusal(peer, "too many connections");
                    continue;
                }
                let _ = tcp.set_nodelay(true);
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let shared = shared.clone();
                let raw_tx = raw_tx.clone();
                let stop = stop.clone();
                let tls = setup.tls.clone();
                tasks.spawn(async move {
                    match tls {
                        None => connection(tcp, peer, &shared, raw_tx, stop).await,
                        Some(acceptor) => {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                                Ok(Ok(stream)) => connection(stream, peer, &shared, raw_tx, stop).await,
                                Ok(Err(e)) => shared.log_refusal(peer, &format!("TLS handshake failed: {e}")),
                                Err(_) => shared.log_refusal(peer, "TLS handshake timed out"),
                            }
                        }
                    }
                    shared.connections.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    drop(raw_tx);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// An acknowledgement owed to the client, in arrival order.
struct OwedAck {
    seq: u64,
    pkid: u16,
    qos: QoS,
    durable: bool,
}

/// Why a connection ends.
enum Close {
    /// The client disconnected or the socket closed.
    Normal,
    /// Something to tell the operator (at info level: a bad client is not provdb's error).
    Protocol(String),
}

async fn read_packet<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> Result<Packet, Close> {
    loop {
        match Packet::read(buf, MAX_PACKET_BYTES) {
            Ok(packet) => return Ok(packet),
            Err(rumqttc::Error::InsufficientBytes(n)) => {
                buf.reserve(n.min(MAX_PACKET_BYTES));
                match reader.read_buf(buf).await {
                    Ok(0) => return Err(Close::Normal),
                    Ok(_) => {}
                    Err(e) => return Err(Close::Protocol(format!("read failed: {e}"))),
                }
            }
            Err(e) => return Err(Close::Protocol(format!("malformed MQTT packet: {e}"))),
        }
    }
}

async fn write_packet<W: AsyncWrite + Unpin>(writer: &mut W, packet: Packet) -> Result<(), Close> {
    let mut out = BytesMut::with_capacity(8);
    packet
        .write(&mut out, MAX_PACKET_BYTES)
        .map_err(|e| Close::Protocol(format!("cannot encode {packet:?}: {e}")))?;
    writer
        .write_all(&out)
        .await
        .map_err(|e| Close::Protocol(format!("write failed: {e}")))?;
    writer
        .flush()
        .await
        .map_err(|e| Close::Protocol(format!("write failed: {e}")))
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    shared: &Shared,
    raw_tx: Feeder<Incoming>,
    stop: watch::Receiver<bool>,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut buf = BytesMut::with_capacity(64 << 10);
    let connect =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, read_packet(&mut reader, &mut buf)).await {
            Ok(Ok(Packet::Connect(c))) => c,
            Ok(Ok(other)) => {
                shared.log_refusal(peer, &format!("expected CONNECT, got {other:?}"));
                return;
            }
            // A port probe or health check that connects and closes is not worth a line.
            Ok(Err(Close::Normal)) => return,
            Ok(Err(Close::Protocol(why))) => {
                shared.log_refusal(peer, &why);
                return;
            }
            Err(_) => {
                shared.log_refusal(peer, "no CONNECT within 10 s");
                return;
            }
        };
    if connect.protocol != Protocol::V4 {
        let _ = write_packet(
            &mut writer,
            Packet::ConnAck(ConnAck::new(
                ConnectReturnCode::RefusedProtocolVersion,
                false,
            )),
        )
        .await;
        shared.log_refusal(peer, "only MQTT 3.1.1 is spoken here");
        return;
    }
    if let Some(passwords) = &shared.passwords {
        let ok = connect
            .login
            .as_ref()
            .is_some_and(|l| passwords.verify(&l.username, l.password.as_bytes()));
        if !ok {
            let _ = write_packet(
                &mut writer,
                Packet::ConnAck(ConnAck::new(ConnectReturnCode::BadUserNamePassword, false)),
            )
            .await;
            let user = connect.login.as_ref().map_or("", |l| l.username.as_str());
            shared.log_refusal(
                peer,
                &format!("bad user name or password (user `{}`)", user.escape_debug()),
            );
            return;
        }
    }
    if connect.client_id.is_empty() && !connect.clean_session {
        let _ = write_packet(
            &mut writer,
            Packet::ConnAck(ConnAck::new(ConnectReturnCode::BadClientId, false)),
        )
        .await;
        shared.log_refusal(peer, "an empty client id needs a clean session");
        return;
    }
    // A persistent session must be on disk before the client is told it exists: after a
    // restart the client resends what was not acknowledged only if its session is present.
    let (reply, session_present) = oneshot::channel();
    let request = SessionRequest {
        client_id: connect.client_id.clone(),
        clean_session: connect.clean_session,
        reply,
    };
    if shared.sessions.send(request).is_err() {
        return;
    }
    let Ok(session_present) = session_present.await else {
        return;
    };
    let serial = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let kicked = Arc::new(Notify::new());
    if !connect.client_id.is_empty() {
        let previous = shared
            .clients
            .lock()
            .insert(connect.client_id.clone(), (serial, kicked.clone()));
        if let Some((_, old)) = previous {
            old.notify_one();
        }
    }
    if write_packet(
        &mut writer,
        Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, session_present)),
    )
    .await
    .is_err()
    {
        forget_client(shared, &connect.client_id, serial);
        return;
    }
    tracing::debug!(
        "client `{}` connected from {peer} (clean session: {}, session present: {session_present})",
        connect.client_id,
        connect.clean_session
    );
    let session = Session {
        client_id: &connect.client_id,
        serial,
        keep_alive: Duration::from_secs(u64::from(connect.keep_alive)),
        shared,
    };
    let close = session
        .run(&mut reader, &mut writer, &mut buf, raw_tx, stop, &kicked)
        .await;
    if let Some(hub) = &shared.hub {
        hub.remove(serial);
    }
    forget_client(shared, &connect.client_id, serial);
    match close {
        Close::Normal => tracing::debug!("client `{}` disconnected", connect.client_id),
        Close::Protocol(why) => tracing::info!(
            "closed the connection of client `{}` from {peer}: {why}",
            connect.client_id.escape_debug()
        ),
    }
}

fn forget_client(shared: &Shared, client_id: &str, serial: u64) {
    let mut clients = shared.clients.lock();
    if clients.get(client_id).is_some_and(|(s, _)| *s == serial) {
        clients.remove(client_id);
    }
}

struct Session<'a> {
    client_id: &'a str,
    /// The connection's number (its key among the alert subscribers).
    serial: u64,
    keep_alive: Duration,
    shared: &'a Shared,
}

impl Session<'_> {
    async fn run<R, W>(
        &self,
        reader: &mut R,
        writer: &mut W,
        buf: &mut BytesMut,
        raw_tx: Feeder<Incoming>,
        mut stop: watch::Receiver<bool>,
        kicked: &Notify,
    ) -> Close
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<u64>();
        let mut done_tx = Some(done_tx);
        let mut raw_tx = Some(raw_tx);
        let mut owed: VecDeque<OwedAck> = VecDeque::new();
        let mut next_seq = 0u64;
        // False once every message sent on was completed (the pipeline dropped the senders).
        let mut acks_open = true;
        // The alert queue: its sender goes to the hub with the first granted subscription.
        let (alert_tx, mut alert_rx) = mpsc::channel::<Delivery>(SUBSCRIBER_QUEUE);
        let mut alert_tx = Some(alert_tx);
        // Subscribed, and the hub may still send alerts (it closes when ingest has ended):
        // at shutdown the connection stays until then, to deliver the last batch's alerts.
        let mut alerts_open = false;
        // Packet ids of QoS 1 alert messages the subscriber has not acknowledged yet.
        let mut inflight: VecDeque<u16> = VecDeque::new();
        let mut last_pkid = 0u16;
        // MQTT 3.1.1 (3.1.2.10): the server disconnects a client silent for 1.5 keep-alives.
        let idle_limit = (!self.keep_alive.is_zero()).then(|| self.keep_alive * 3 / 2);
        let mut last_heard = tokio::time::Instant::now();
        let mut stopping = *stop.borrow();
        if stopping {
            return Close::Normal;
        }
        loop {
            let idle_deadline = idle_limit.map(|l| last_heard + l);
            tokio::select! {
                packet = read_packet(reader, buf), if !stopping => {
                    last_heard = tokio::time::Instant::now();
                    let packet = match packet {
                        Ok(p) => p,
                        Err(close) => return close,
                    };
                    match packet {
                        Packet::Publish(publish) => {
                            if publish.topic.is_empty() || publish.topic.contains(['+', '#']) {
                                return Close::Protocol(format!(
                                    "PUBLISH to an invalid topic `{}`",
                                    publish.topic.escape_debug()
                                ));
                            }
                            let (Some(tx), Some(done)) = (&raw_tx, &done_tx) else {
                                continue;
                            };
                            let ack = match publish.qos {
                                QoS::AtMostOnce => Ack::None,
                                qos => {
                                    let seq = next_seq;
                                    next_seq += 1;
                                    owed.push_back(OwedAck { seq, pkid: publish.pkid, qos, durable: false });
                                    Ack::Listener { done: done.clone(), seq }
                                }
                            };
                            self.shared.stats.received.fetch_add(1, Ordering::Relaxed);
                            let item = Incoming {
                                topic: publish.topic,
                                payload: publish.payload,
                                arrival_ms: now_ms(),
                                ack,
                            };
                            if !send_with_backpressure(tx, item).await {
                                return Close::Normal;
                            }
                        }
                        Packet::PubRel(rel) => {
                            // PUBREC went out only once the message was durable, so the
                            // release can be completed at once.
                            if let Err(c) = write_packet(writer, Packet::PubComp(PubComp::new(rel.pkid))).await {
                                return c;
                            }
                        }
                        Packet::PingReq => {
                            if let Err(c) = write_packet(writer, Packet::PingResp).await {
                                return c;
                            }
                        }
                        Packet::Subscribe(sub) => {
                            let codes = match &self.shared.hub {
                                Some(hub) => {
                                    let filters: Vec<(String, QoS)> =
                                        sub.filters.iter().map(|f| (f.path.clone(), f.qos)).collect();
                                    let codes = hub.subscribe(self.serial, self.client_id, &mut alert_tx, &filters);
                                    if alert_tx.is_none() && !stopping {
                                        alerts_open = true;
                                    }
                                    codes
                                }
                                None => vec![SubscribeReasonCode::Failure; sub.filters.len()],
                            };
                            // One line per packet, however many filters it names.
                            let refused = codes.iter().filter(|c| **c == SubscribeReasonCode::Failure).count();
                            if refused > 0 {
                                let first = sub.filters.iter().zip(&codes).find(|(_, c)| **c == SubscribeReasonCode::Failure);
                                tracing::debug!(
                                    "client `{}`: refused {refused} of {} subscriptions, such as `{}` (only alert topics are published here)",
                                    self.client_id.escape_debug(),
                                    codes.len(),
                                    first.map_or(String::new(), |(f, _)| f.path.escape_debug().to_string())
                                );
                            }
                            if let Err(c) = write_packet(writer, Packet::SubAck(SubAck::new(sub.pkid, codes))).await {
                                return c;
                            }
                        }
                        Packet::Unsubscribe(u) => {
                            if let Some(hub) = &self.shared.hub {
                                hub.unsubscribe(self.serial, &u.topics);
                            }
                            if let Err(c) = write_packet(writer, Packet::UnsubAck(UnsubAck::new(u.pkid))).await {
                                return c;
                            }
                        }
                        Packet::PubAck(ack) => {
                            // A subscriber's acknowledgement of an alert message.
                            if let Some(i) = inflight.iter().position(|p| *p == ack.pkid) {
                                inflight.remove(i);
                            }
                        }
                        Packet::Disconnect => {
                            // What is still owed is resent by the client on its next
                            // connection (persistent session), or was QoS 0.
                            // A subscriber that leaves wants no more alerts.
                            stopping = true;
                            raw_tx = None;
                            done_tx = None;
                            alerts_open = false;
                            if owed.is_empty() {
                                return Close::Normal;
                            }
                        }
                        Packet::Connect(_) => return Close::Protocol("a second CONNECT".to_owned()),
                        // Alerts go out at QoS 0 or 1 only: nothing of QoS 2 to track.
                        Packet::PubRec(_) | Packet::PubComp(_) | Packet::PingResp => {}
                        other => return Close::Protocol(format!("unexpected packet {other:?}")),
                    }
                }
                done = done_rx.recv(), if acks_open => {
                    let Some(seq) = done else {
                        // Every message sent on is stored or dropped: nothing more to ack.
                        acks_open = false;
                        if alerts_open {
                            continue;
                        }
                        return Close::Normal;
                    };
                    if let Some(front) = owed.front() {
                        let index = seq.checked_sub(front.seq).and_then(|i| usize::try_from(i).ok());
                        if let Some(o) = index.and_then(|i| owed.get_mut(i)) {
                            o.durable = true;
                        }
                    }
                    // MQTT 3.1.1 (4.6): acknowledgements go out in the order of arrival.
                    while owed.front().is_some_and(|o| o.durable) {
                        let Some(o) = owed.pop_front() else { break };
                        let packet = match o.qos {
                            QoS::ExactlyOnce => Packet::PubRec(PubRec::new(o.pkid)),
                            _ => Packet::PubAck(PubAck::new(o.pkid)),
                        };
                        if let Err(c) = write_packet(writer, packet).await {
                            return c;
                        }
                    }
                    if stopping && owed.is_empty() && done_tx.is_none() && !alerts_open {
                        return Close::Normal;
                    }
                }
                delivery = alert_rx.recv(), if alerts_open && (stopping || inflight.len() < MAX_ALERTS_INFLIGHT) => {
                    let Some(delivery) = delivery else {
                        // The hub closed: no alert will come any more. (With the acks
                        // channel closed too, what is still owed will never be stored.)
                        alerts_open = false;
                        if stopping && (owed.is_empty() || !acks_open) {
                            return Close::Normal;
                        }
                        continue;
                    };
                    let message = &delivery.message;
                    let mut publish = Publish::from_bytes(message.topic.as_str(), delivery.qos, message.payload.clone());
                    if delivery.qos != QoS::AtMostOnce {
                        if inflight.len() >= MAX_ALERTS_INFLIGHT {
                            // Only while stopping, when PUBACKs are no longer read: forget the
                            // oldest (it is not sent again anyway).
                            inflight.pop_front();
                        }
                        last_pkid = next_pkid(last_pkid, &inflight);
                        publish.pkid = last_pkid;
                        inflight.push_back(last_pkid);
                    }
                    match tokio::time::timeout(ALERT_WRITE_TIMEOUT, write_packet(writer, Packet::Publish(publish))).await {
                        Ok(Ok(())) => {
                            let stats = &self.shared.stats;
                            stats.alerts_published.fetch_add(1, Ordering::Relaxed);
                            stats.alert_latency.record(message.durable_at.elapsed());
                        }
                        Ok(Err(c)) => return c,
                        Err(_) => {
                            return Close::Protocol(format!(
                                "a subscriber that took no alert message for {ALERT_WRITE_TIMEOUT:?}"
                            ))
                        }
                    }
                }
                _ = stop.changed(), if !stopping => {
                    // Shutting down: read nothing more; acknowledge what is in flight once it
                    // is stored, deliver the alerts of the last writes, then close.
                    stopping = true;
                    raw_tx = None;
                    done_tx = None;
                    if owed.is_empty() && !alerts_open {
                        return Close::Normal;
                    }
                }
                _ = kicked.notified() => {
                    return Close::Protocol("another connection took over its client id".to_owned());
                }
                _ = sleep_until_opt(idle_deadline), if !stopping => {
                    return Close::Protocol(format!(
                        "silent for more than 1.5 keep-alive periods ({:?})",
                        idle_limit.unwrap_or_default()
                    ));
                }
            }
        }
    }
}

/// The next packet id for an alert message: not 0, not one still waiting for its PUBACK.
fn next_pkid(last: u16, inflight: &VecDeque<u16>) -> u16 {
    let mut id = last;
    loop {
        id = id.wrapping_add(1).max(1);
        // Terminates: at most MAX_ALERTS_INFLIGHT of the 65535 ids are taken.
        if !inflight.contains(&id) {
            return id;
        }
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
