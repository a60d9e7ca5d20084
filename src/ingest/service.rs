//! The ingest pipeline: MQTT receive -> parallel decode -> one batching writer -> acks.
//!
//! * The network side (tokio, one thread) is either the embedded listener
//!   ([`super::listener`], publishers connect to provdb) or an MQTT client of an external
//!   broker. It hands each publish to a bounded queue; when the queue is full it stops reading
//!   (backpressure reaches the publisher or broker through TCP).
//! * `decode_threads` decoder threads turn payloads into records, or into quarantine entries;
//!   each marks the message it decodes, so a message that kills the process is identified at
//!   the next start (`poison`), and catches panics per message.
//! * One writer groups messages into one atomic, fsynced RocksDB write (bounded by messages,
//!   records and latency), updating the machine registry and quarantine in the same write.
//! * Only then are the messages acknowledged: PUBACK/PUBREC by the listener's connection, or
//!   manual acks through the client (acks of messages received on an earlier broker
//!   connection are dropped, since the broker redelivers those anyway).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use provdb_storage::{AuxPut, AuxTable, Durability, RecordBatch};
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS,
};

use super::client_errors::{self, Failure};
use super::config::{connect_address, BrokerTarget, IngestConfig};
use super::listener::{self, ListenerSetup, SessionRequest};
use super::poison::{DecodeMarker, PoisonJournal, Strikes, STRIKES_TO_QUARANTINE};
use super::quarantine::QuarantineEntry;
use super::registry::{load_machines, MachineRecord};
use super::wire::fnv1a;
use super::IngestError;
use crate::decode::{self, payload::unwrap_payload, DecodeError};
use crate::Database;

/// Largest machine description kept in the registry.
const MAX_DESCRIPTION: usize = 64 << 10;

/// Stops a running service: triggered by the caller (signal handler, test).
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    pub(crate) notify: Arc<tokio::sync::Notify>,
}

impl Shutdown {
    /// A handle that is not triggered.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Asks the service to flush, acknowledge and disconnect.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// True once triggered.
    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// Live counters of a running service (shared; read them with [`IngestStats::snapshot`]).
#[derive(Debug, Default)]
pub struct IngestStats {
    pub(crate) received: AtomicU64,
    stored: AtomicU64,
    records: AtomicU64,
    json_bytes: AtomicU64,
    payload_bytes: AtomicU64,
    quarantined: AtomicU64,
    ignored: AtomicU64,
    batches: AtomicU64,
    connections: AtomicU64,
    subscriptions: AtomicU64,
    connected: AtomicBool,
    ready: AtomicBool,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Publishes received from the broker (redeliveries included).
    pub received: u64,
    /// Messages whose records are durably stored (and acknowledged).
    pub stored: u64,
    /// Records (vertices + edges) decoded from stored messages (duplicates included).
    pub records: u64,
    /// Inflated JSON bytes of stored messages.
    pub json_bytes: u64,
    /// Payload bytes (as received) of stored messages.
    pub payload_bytes: u64,
    /// Messages put into quarantine.
    pub quarantined: u64,
    /// Empty / keep-alive / foreign-topic messages skipped.
    pub ignored: u64,
    /// Durable writes.
    pub batches: u64,
    /// Successful connections to the broker.
    pub connections: u64,
    /// Subscriptions the broker confirmed (SubAck), over all connections.
    pub subscriptions: u64,
    /// Connected right now (external broker), or listening (embedded listener).
    pub connected: bool,
    /// Ready to receive: subscribed at the external broker, or the embedded listener is
    /// listening.
    pub ready: bool,
}

impl IngestStats {
    /// Current values.
    pub fn snapshot(&self) -> StatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            received: l(&self.received),
            stored: l(&self.stored),
            records: l(&self.records),
            json_bytes: l(&self.json_bytes),
            payload_bytes: l(&self.payload_bytes),
            quarantined: l(&self.quarantined),
            ignored: l(&self.ignored),
            batches: l(&self.batches),
            connections: l(&self.connections),
            subscriptions: l(&self.subscriptions),
            connected: self.connected.load(Ordering::Relaxed),
            ready: self.ready.load(Ordering::Relaxed),
        }
    }
}

/// A running-service handle: shutdown plus live counters.
#[derive(Debug, Clone, Default)]
pub struct IngestControl {
    /// Stops the service.
    pub shutdown: Shutdown,
    /// Live counters.
    pub stats: Arc<IngestStats>,
}

impl IngestControl {
    /// A fresh handle.
    pub fn new() -> IngestControl {
        IngestControl::default()
    }
}

/// A received message on its way through the pipeline.
pub(crate) struct Incoming {
    pub(crate) topic: String,
    pub(crate) payload: bytes::Bytes,
    pub(crate) arrival_ms: u64,
    /// How to acknowledge it once it is durable.
    pub(crate) ack: Ack,
}

/// Where a message's acknowledgement goes once the message is durable.
pub(crate) enum Ack {
    /// An external broker's delivery: acknowledged through the client, in arrival order per
    /// connection (`epoch`); its payload is not kept here.
    Broker {
        publish: Publish,
        epoch: u64,
        seq: u64,
    },
    /// A publish on the embedded listener: its connection sends PUBACK/PUBREC for `seq`.
    Listener {
        done: tokio::sync::mpsc::UnboundedSender<u64>,
        seq: u64,
    },
    /// QoS 0: nothing to acknowledge.
    None,
}

/// What decoding made of a message.
enum Outcome {
    /// Records to store.
    Store {
        batch: RecordBatch,
        json_bytes: usize,
        description: Option<String>,
    },
    /// Could not be stored: quarantine it.
    Quarantine(QuarantineEntry),
    /// Nothing to store (keep-alive, empty payload, foreign topic).
    Ignore,
}

struct Decoded {
    incoming: Incoming,
    machine: Option<u32>,
    outcome: Outcome,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Which kind of topic a message came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopicKind {
    Provenance,
    Machine,
    Other,
}

fn topic_kind<'t>(config: &IngestConfig, topic: &'t str) -> (TopicKind, Option<&'t str>) {
    if let Some(rest) = topic.strip_prefix(config.topic_prefix.as_str()) {
        return (TopicKind::Provenance, Some(rest));
    }
    if let Some(m) = &config.machine_topic_prefix {
        if let Some(rest) = topic.strip_prefix(m.as_str()) {
            return (TopicKind::Machine, Some(rest));
        }
    }
    (TopicKind::Other, None)
}

/// Decodes a payload: base64+zlib as camflowd sends it, or bare JSON text (as decode's one
/// sniffing function judges it).
fn payload_json(payload: &[u8], max_inflated: usize) -> Result<Vec<u8>, DecodeError> {
    match decode::sniff(payload).kind {
        decode::TextKind::Json => Ok(payload.to_vec()),
        _ => unwrap_payload(payload, max_inflated),
    }
}

/// Hands a message to the decoders, waiting while their queue is full: the network side
/// stops reading, so backpressure reaches the publisher or broker through TCP. False when the
/// decoders have stopped.
pub(crate) async fn send_with_backpressure(tx: &Sender<Incoming>, mut item: Incoming) -> bool {
    loop {
        match tx.try_send(item) {
            Ok(()) => return true,
            Err(TrySendError::Full(back)) => {
                item = back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(TrySendError::Disconnected(_)) => return false,
        }
    }
}

/// Decides what to do with one message: its machine (from the topic) and the outcome.
fn decode_message(config: &IngestConfig, incoming: &Incoming) -> (Option<u32>, Outcome) {
    let topic = incoming.topic.as_str();
    let (kind, suffix) = topic_kind(config, topic);
    if kind == TopicKind::Other || incoming.payload.is_empty() {
        return (None, Outcome::Ignore);
    }
    let machine = suffix.and_then(|s| s.parse::<u32>().ok());
    let Some(machine_id) = machine else {
        let outcome = quarantine(
            incoming,
            "topic",
            format!("topic `{topic}` does not end with a decimal machine id"),
            None,
        );
        return (None, outcome);
    };
    #[cfg(debug_assertions)]
    test_hooks::crash_if_marked(&incoming.payload);
    let outcome = match payload_json(&incoming.payload, config.max_inflated) {
        Err(e) => quarantine(incoming, e.kind(), e.to_string(), machine),
        Ok(json) => {
            let json_bytes = json.len();
            let description = (kind == TopicKind::Machine).then(|| {
                let end = json.len().min(MAX_DESCRIPTION);
                String::from_utf8_lossy(&json[..end]).into_owned()
            });
            match decode::decode_text(json) {
                Err(e) => quarantine(incoming, e.kind(), e.to_string(), machine),
                Ok(batch) => match foreign_machine(&batch, machine_id) {
                    Some((what, other)) if kind == TopicKind::Provenance => quarantine(
                        incoming,
                        "machine_mismatch",
                        format!(
                            "{what} carries machine id {other}, but the topic says {machine_id}"
                        ),
                        machine,
                    ),
                    _ => Outcome::Store {
                        batch,
                        json_bytes,
                        description,
                    },
                },
            }
        }
    };
    (machine, outcome)
}

fn quarantine(incoming: &Incoming, kind: &str, error: String, machine: Option<u32>) -> Outcome {
    Outcome::Quarantine(QuarantineEntry {
        arrival_ms: incoming.arrival_ms,
        topic: incoming.topic.clone(),
        machine,
        kind: kind.to_owned(),
        error,
        payload: incoming.payload.to_vec(),
    })
}

/// The machine id a topic names, whatever its kind (for quarantine entries made before
/// decoding).
fn topic_machine(config: &IngestConfig, topic: &str) -> Option<u32> {
    topic_kind(config, topic)
        .1
        .and_then(|s| s.parse::<u32>().ok())
}

/// Decodes one message with the crash-loop defences: a message that stopped the process
/// during earlier decodes is quarantined undecoded, the message is marked while it is being
/// decoded, and a panic in decoding quarantines the message instead of ending the thread.
fn decode_guarded(
    config: &IngestConfig,
    incoming: Incoming,
    strikes: &Strikes,
    marker: &mut DecodeMarker,
) -> Decoded {
    let key = fnv1a(&[incoming.topic.as_bytes(), &incoming.payload]);
    let struck = if strikes.is_empty() {
        0
    } else {
        strikes.of(key)
    };
    if struck >= STRIKES_TO_QUARANTINE {
        let machine = topic_machine(config, &incoming.topic);
        let outcome = quarantine(
            &incoming,
            "poison",
            format!(
                "provdb stopped abnormally {struck} times while decoding this message \
                 (a crash, an abort or a stack overflow); it was not decoded again"
            ),
            machine,
        );
        return Decoded {
            incoming,
            machine,
            outcome,
        };
    }
    marker.begin(key, &incoming.topic);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_message(config, &incoming)
    }));
    marker.end();
    let (machine, outcome) = match result {
        Ok(decoded) => decoded,
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            let machine = topic_machine(config, &incoming.topic);
            let outcome = quarantine(
                &incoming,
                "panic",
                format!("the decoder panicked on this message: {detail}"),
                machine,
            );
            (machine, outcome)
        }
    };
    Decoded {
        incoming,
        machine,
        outcome,
    }
}

/// Crash triggers that only the test suite switches on (debug builds, environment
/// variables): they stand for a future decoder bug that kills the process.
#[cfg(debug_assertions)]
mod test_hooks {
    use std::sync::OnceLock;

    fn marker(var: &str, cell: &'static OnceLock<Option<Vec<u8>>>) -> Option<&'static [u8]> {
        cell.get_or_init(|| {
            std::env::var(var)
                .ok()
                .filter(|m| !m.is_empty())
                .map(String::into_bytes)
        })
        .as_deref()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// Aborts the process on a payload containing `PROVDB_TEST_ABORT_ON`, panics on one
    /// containing `PROVDB_TEST_PANIC_ON`.
    pub(super) fn crash_if_marked(payload: &[u8]) {
        static ABORT: OnceLock<Option<Vec<u8>>> = OnceLock::new();
        static PANIC: OnceLock<Option<Vec<u8>>> = OnceLock::new();
        if let Some(m) = marker("PROVDB_TEST_ABORT_ON", &ABORT) {
            if contains(payload, m) {
                eprintln!("test hook: aborting on a marked message");
                std::process::abort();
            }
        }
        if let Some(m) = marker("PROVDB_TEST_PANIC_ON", &PANIC) {
            if contains(payload, m) {
                panic!("test hook: panicking on a marked message");
            }
        }
    }
}

/// The first record whose identifier names another machine than `machine`. Machine id 0 (not
/// configured yet, e.g. early boot) matches any topic.
fn foreign_machine(batch: &RecordBatch, machine: u32) -> Option<(String, u32)> {
    for v in &batch.vertices {
        if let Some(m) = v.placement.machine {
            if m != machine && m != 0 {
                return Some((format!("vertex {}", v.ext_id), m));
            }
        }
    }
    for e in &batch.edges {
        if let Some(m) = e.placement.machine {
            if m != machine && m != 0 {
                return Some((format!("edge {}", e.ext_id), m));
            }
        }
    }
    None
}

fn decoder_loop(
    config: &IngestConfig,
    rx: Receiver<Incoming>,
    tx: Sender<Decoded>,
    strikes: &Strikes,
    mut marker: DecodeMarker,
) {
    for incoming in rx.iter() {
        let decoded = decode_guarded(config, incoming, strikes, &mut marker);
        if tx.send(decoded).is_err() {
            break;
        }
    }
}

/// Stored messages to acknowledge through an external broker: (publish, connection epoch,
/// arrival order).
type AckBatch = Vec<(Publish, u64, u64)>;

/// Sends the acknowledgements of durable messages where each belongs.
fn acknowledge(
    stored: Vec<Decoded>,
    broker_acks: Option<&tokio::sync::mpsc::UnboundedSender<AckBatch>>,
) {
    let mut batch: AckBatch = Vec::new();
    for d in stored {
        match d.incoming.ack {
            Ack::Broker {
                publish,
                epoch,
                seq,
            } => batch.push((publish, epoch, seq)),
            // A closed connection: its client resends on the next one.
            Ack::Listener { done, seq } => {
                let _ = done.send(seq);
            }
            Ack::None => {}
        }
    }
    if batch.is_empty() {
        return;
    }
    if let Some(tx) = broker_acks {
        if tx.send(batch).is_err() {
            tracing::warn!("ack channel closed; messages will be redelivered");
        }
    }
}

/// The writer: groups decoded messages into durable writes, then hands their acks on.
struct Writer<'a> {
    db: &'a Database,
    config: &'a IngestConfig,
    stats: &'a IngestStats,
    registry: HashMap<u32, MachineRecord>,
}

impl Writer<'_> {
    fn run(
        mut self,
        rx: Receiver<Decoded>,
        broker_acks: Option<tokio::sync::mpsc::UnboundedSender<AckBatch>>,
        shutdown: &Shutdown,
    ) {
        let mut pending: Vec<Decoded> = Vec::new();
        loop {
            let first = match rx.recv() {
                Ok(d) => d,
                Err(_) => break,
            };
            let deadline = Instant::now() + self.config.batch_latency;
            let mut records = record_count(&first);
            pending.push(first);
            while pending.len() < self.config.batch_max_messages
                && records < self.config.batch_max_records
            {
                let next = match rx.try_recv() {
                    Ok(d) => Ok(d),
                    Err(_) => rx.recv_deadline(deadline),
                };
                match next {
                    Ok(d) => {
                        records += record_count(&d);
                        pending.push(d);
                    }
                    Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            match self.commit_with_retry(&mut pending, shutdown) {
                Ok(()) => acknowledge(std::mem::take(&mut pending), broker_acks.as_ref()),
                Err(e) => {
                    tracing::error!(
                        "storage write failed ({e}); stopping without acknowledging {} messages \
                         (the broker will redeliver them)",
                        pending.len()
                    );
                    shutdown.trigger();
                    return;
                }
            }
        }
    }

    fn commit_with_retry(
        &mut self,
        pending: &mut [Decoded],
        shutdown: &Shutdown,
    ) -> crate::Result<()> {
        let prepared = self.prepare(pending)?;
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            let result = if prepared.batch.is_empty() && prepared.aux.is_empty() {
                Ok(())
            } else {
                self.db
                    .store()
                    .write_with(&prepared.batch, &prepared.aux, Durability::Sync)
                    .map(|_| ())
            };
            match result {
                Ok(()) => break,
                Err(e) if attempt < 5 && !shutdown.is_triggered() => {
                    tracing::warn!("storage write failed, retrying in {delay:?}: {e}");
                    std::thread::sleep(delay);
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        for entry in &prepared.quarantined_new {
            tracing::warn!(
                topic = %entry.0,
                kind = %entry.1,
                "quarantined a message: {}",
                entry.2
            );
        }
        self.registry.extend(prepared.touched);
        let s = self.stats;
        let c = prepared.counts;
        s.stored.fetch_add(c[0], Ordering::Relaxed);
        s.records.fetch_add(c[1], Ordering::Relaxed);
        s.json_bytes.fetch_add(c[2], Ordering::Relaxed);
        s.payload_bytes.fetch_add(c[3], Ordering::Relaxed);
        s.quarantined.fetch_add(c[4], Ordering::Relaxed);
        s.ignored.fetch_add(c[5], Ordering::Relaxed);
        s.batches.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Builds one write from the pending messages (their record batches are moved out).
    fn prepare(&mut self, pending: &mut [Decoded]) -> crate::Result<Prepared> {
        let mut batch = RecordBatch::default();
        let mut aux = Vec::new();
        let mut touched: HashMap<u32, MachineRecord> = HashMap::new();
        let mut seen_quarantine: HashSet<[u8; 8]> = HashSet::new();
        let mut quarantined_new = Vec::new();
        // stored, records, json bytes, payload bytes, quarantined, ignored
        let mut c = [0u64; 6];
        for d in pending.iter_mut() {
            let bytes = d.incoming.payload.len() as u64;
            let arrival = d.incoming.arrival_ms;
            let record = d.machine.and_then(|m| match &d.outcome {
                Outcome::Ignore => None,
                _ => Some(touched.entry(m).or_insert_with(|| {
                    self.registry
                        .get(&m)
                        .cloned()
                        .unwrap_or_else(|| MachineRecord::new(m, arrival))
                })),
            });
            match &mut d.outcome {
                Outcome::Store {
                    batch: b,
                    json_bytes,
                    description,
                } => {
                    let n = b.len() as u64;
                    batch.append(std::mem::take(b));
                    c[0] += 1;
                    c[1] += n;
                    c[2] += *json_bytes as u64;
                    c[3] += bytes;
                    if let Some(r) = record {
                        r.messages += 1;
                        r.records += n;
                        r.bytes += bytes;
                        r.last_seen_ms = r.last_seen_ms.max(arrival);
                        if description.is_some() {
                            r.description = description.take();
                        }
                    }
                }
                Outcome::Quarantine(entry) => {
                    let key = entry.key();
                    let new = seen_quarantine.insert(key)
                        && self
                            .db
                            .store()
                            .aux_get(AuxTable::Quarantine, &key)?
                            .is_none();
                    if let Some(r) = record {
                        r.messages += 1;
                        r.bytes += bytes;
                        r.last_seen_ms = r.last_seen_ms.max(arrival);
                        if new {
                            r.rejected += 1;
                        }
                    }
                    if new {
                        quarantined_new.push((
                            entry.topic.clone(),
                            entry.kind.clone(),
                            entry.error.clone(),
                        ));
                        aux.push(AuxPut {
                            table: AuxTable::Quarantine,
                            key: key.to_vec(),
                            value: entry.encode(),
                        });
                    }
                    c[4] += 1;
                }
                Outcome::Ignore => c[5] += 1,
            }
        }
        for (m, r) in &touched {
            aux.push(AuxPut {
                table: AuxTable::Machines,
                key: MachineRecord::key(*m).to_vec(),
                value: r.encode(),
            });
        }
        Ok(Prepared {
            batch,
            aux,
            touched,
            quarantined_new,
            counts: c,
        })
    }
}

/// One durable write in the making.
struct Prepared {
    batch: RecordBatch,
    aux: Vec<AuxPut>,
    touched: HashMap<u32, MachineRecord>,
    quarantined_new: Vec<(String, String, String)>,
    counts: [u64; 6],
}

fn record_count(d: &Decoded) -> usize {
    match &d.outcome {
        Outcome::Store { batch, .. } => batch.len(),
        _ => 1,
    }
}

fn qos_of(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// MQTT options of the service's client.
fn mqtt_options(config: &IngestConfig) -> Result<MqttOptions, IngestError> {
    let (host, port, tls) = match &config.broker {
        BrokerTarget::Embedded { listen } => {
            let a = connect_address(*listen);
            (a.ip().to_string(), a.port(), false)
        }
        BrokerTarget::External(url) => (url.host.clone(), url.port, url.tls),
    };
    let mut o = MqttOptions::new(config.client_id.clone(), host, port);
    o.set_keep_alive(Duration::from_secs(20))
        .set_clean_session(!config.persistent_session)
        .set_manual_acks(true)
        .set_max_packet_size(64 << 20, 1 << 20)
        .set_inflight(config.inflight.max(1))
        .set_request_channel_capacity(config.queue_capacity.max(16) * 4);
    if let (Some(u), p) = (&config.auth.username, &config.auth.password) {
        o.set_credentials(u.clone(), p.clone().unwrap_or_default());
    }
    if tls {
        let target = client_errors::ClientTarget::of_service(config);
        o.set_transport(
            client_errors::tls_transport(&target.url, config.auth.ca_file.as_deref())
                .map_err(|e| IngestError::Broker(e.to_string()))?,
        );
    }
    Ok(o)
}

/// Runs the ingest service until `control.shutdown` is triggered (or storage fails for good).
/// Starts the embedded broker first when the config says so.
///
/// On shutdown it stops taking messages, stores and acknowledges everything in flight, then
/// disconnects; messages that arrived later stay unacknowledged and the broker redelivers them
/// to the next run (persistent session).
pub fn run(
    db: &Database,
    config: &IngestConfig,
    control: &IngestControl,
) -> Result<StatsSnapshot, IngestError> {
    // Every setting is checked before anything starts: a wrong password file or certificate
    // is an exit with a message, not a retry loop.
    let source = match &config.broker {
        BrokerTarget::Embedded { listen } => {
            Source::Listener(ListenerSetup::prepare(*listen, &config.listener)?)
        }
        BrokerTarget::External(_) => Source::Broker(Box::new(mqtt_options(config)?)),
    };
    let registry: HashMap<u32, MachineRecord> = load_machines(db.store())?
        .into_iter()
        .map(|r| (r.machine, r))
        .collect();
    let journal = PoisonJournal::open(db.store().path())?;
    let strikes = journal.recover(db.store())?;
    let decoders = config.decode_threads.max(1);
    let markers = (0..decoders)
        .map(|i| journal.marker(i))
        .collect::<Result<Vec<_>, _>>()?;
    let (raw_tx, raw_rx) = bounded::<Incoming>(config.queue_capacity.max(1));
    let (dec_tx, dec_rx) = bounded::<Decoded>(config.queue_capacity.max(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| IngestError::Broker(format!("cannot start the network runtime: {e}")))?;
    let shutdown = &control.shutdown;
    let stats = &control.stats;
    let strikes = &strikes;
    let writer = Writer {
        db,
        config,
        stats,
        registry,
    };
    let (broker_ack_tx, broker_ack_rx) = match &source {
        Source::Broker(_) => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<AckBatch>();
            (Some(tx), Some(rx))
        }
        Source::Listener(_) => (None, None),
    };
    let network_result = std::thread::scope(|scope| {
        for (i, marker) in markers.into_iter().enumerate() {
            let rx = raw_rx.clone();
            let tx = dec_tx.clone();
            std::thread::Builder::new()
                .name(format!("decode-{i}"))
                .spawn_scoped(scope, move || decoder_loop(config, rx, tx, strikes, marker))
                .map_err(|e| IngestError::Broker(format!("cannot start a decoder: {e}")))?;
        }
        drop(raw_rx);
        drop(dec_tx);
        std::thread::Builder::new()
            .name("writer".to_owned())
            .spawn_scoped(scope, move || writer.run(dec_rx, broker_ack_tx, shutdown))
            .map_err(|e| IngestError::Broker(format!("cannot start the writer: {e}")))?;
        // The network side drops `raw_tx` when it stops, so the decoders and the writer
        // finish after it.
        match source {
            Source::Broker(options) => {
                let Some(ack_rx) = broker_ack_rx else {
                    return Err(IngestError::Broker("no acknowledgement channel".to_owned()));
                };
                runtime.block_on(network(config, *options, raw_tx, ack_rx, control))
            }
            Source::Listener(setup) => {
                let (session_tx, session_rx) = std::sync::mpsc::channel::<SessionRequest>();
                std::thread::Builder::new()
                    .name("sessions".to_owned())
                    .spawn_scoped(scope, move || keep_sessions(db, session_rx, shutdown))
                    .map_err(|e| {
                        IngestError::Broker(format!("cannot start the session keeper: {e}"))
                    })?;
                runtime.block_on(listen(setup, raw_tx, session_tx, control))
            }
        }
    });
    network_result?;
    let snap = stats.snapshot();
    tracing::info!(
        "ingest stopped: {} messages stored ({} records), {} quarantined",
        snap.stored,
        snap.records,
        snap.quarantined
    );
    Ok(snap)
}

/// Where messages come from.
enum Source {
    /// An external broker, through the MQTT client.
    Broker(Box<MqttOptions>),
    /// The embedded listener.
    Listener(ListenerSetup),
}

/// Runs the embedded listener until shutdown is triggered.
async fn listen(
    setup: ListenerSetup,
    raw_tx: Sender<Incoming>,
    session_tx: std::sync::mpsc::Sender<SessionRequest>,
    control: &IngestControl,
) -> Result<(), IngestError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = control.shutdown.clone();
    let stopper = tokio::spawn(async move {
        while !shutdown.is_triggered() {
            tokio::select! {
                _ = shutdown.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        let _ = stop_tx.send(true);
    });
    let stats = control.stats.clone();
    let ready = {
        let stats = stats.clone();
        move || {
            stats.connected.store(true, Ordering::Relaxed);
            stats.ready.store(true, Ordering::Relaxed);
        }
    };
    let result = listener::serve(setup, raw_tx, session_tx, stats.clone(), stop_rx, ready).await;
    stats.connected.store(false, Ordering::Relaxed);
    stopper.abort();
    result.map_err(IngestError::Listener)
}

/// Key prefix of persistent MQTT sessions in the service-state table.
const SESSION_PREFIX: &[u8] = b"session/";

/// Answers the listener's session requests: a client connecting without clean session is
/// recorded durably (before its CONNACK says the session is present on a later connection),
/// one connecting with clean session is forgotten.
fn keep_sessions(
    db: &Database,
    requests: std::sync::mpsc::Receiver<SessionRequest>,
    shutdown: &Shutdown,
) {
    let store = db.store();
    let mut sessions: HashSet<Vec<u8>> = HashSet::new();
    for item in store.aux_scan(AuxTable::ServiceState, SESSION_PREFIX) {
        match item {
            Ok((k, _)) if k.starts_with(SESSION_PREFIX) => {
                sessions.insert(k[SESSION_PREFIX.len()..].to_vec());
            }
            Ok(_) => break,
            Err(e) => {
                tracing::error!("cannot read the MQTT sessions: {e}; stopping");
                shutdown.trigger();
                return;
            }
        }
    }
    for request in requests {
        let id = request.client_id.as_bytes();
        let mut key = SESSION_PREFIX.to_vec();
        key.extend_from_slice(id);
        let present = sessions.contains(id);
        let result = if request.clean_session {
            sessions.remove(id);
            if present {
                store.aux_write(&[], &[(AuxTable::ServiceState, key)], Durability::Sync)
            } else {
                Ok(())
            }
        } else if present {
            Ok(())
        } else {
            sessions.insert(id.to_vec());
            let put = AuxPut {
                table: AuxTable::ServiceState,
                key,
                value: Vec::new(),
            };
            store.aux_write(&[put], &[], Durability::Sync)
        };
        match result {
            Ok(()) => {
                let _ = request.reply.send(present && !request.clean_session);
            }
            Err(e) => {
                // The reply sender is dropped: the connection closes without a CONNACK.
                tracing::error!("cannot record an MQTT session: {e}; stopping");
                shutdown.trigger();
            }
        }
    }
}

async fn network(
    config: &IngestConfig,
    options: MqttOptions,
    raw_tx: Sender<Incoming>,
    mut ack_rx: tokio::sync::mpsc::UnboundedReceiver<AckBatch>,
    control: &IngestControl,
) -> Result<(), IngestError> {
    let stats = control.stats.clone();
    let capacity = options.request_channel_capacity();
    let (client, mut eventloop): (AsyncClient, EventLoop) = AsyncClient::new(options, capacity);
    let epoch = Arc::new(AtomicU64::new(0));
    let acks_done = Arc::new(AtomicBool::new(false));
    let ack_task = {
        let client = client.clone();
        let epoch = epoch.clone();
        let acks_done = acks_done.clone();
        tokio::spawn(async move {
            // Brokers (rumqttd strictly) expect acks in delivery order, but parallel decoding
            // commits out of order: release acks only in contiguous arrival order.
            let mut ack_epoch = 0u64;
            let mut next = 0u64;
            let mut waiting: BTreeMap<u64, Publish> = BTreeMap::new();
            while let Some(batch) = ack_rx.recv().await {
                for (publish, e, seq) in batch {
                    if e < ack_epoch || e < epoch.load(Ordering::SeqCst) {
                        // Received on an earlier connection: the broker redelivers it.
                        continue;
                    }
                    if e > ack_epoch {
                        ack_epoch = e;
                        next = 0;
                        waiting.clear();
                    }
                    waiting.insert(seq, publish);
                }
                while let Some(publish) = waiting.remove(&next) {
                    next += 1;
                    if let Err(err) = client.ack(&publish).await {
                        tracing::debug!("ack not sent: {err}");
                    }
                }
            }
            acks_done.store(true, Ordering::SeqCst);
            // Everything stored is acknowledged: leave cleanly.
            let _ = client.disconnect().await;
        })
    };
    let report = config.report_interval.map(|every| {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            let mut last = stats.snapshot();
            let mut last_at = Instant::now();
            loop {
                tick.tick().await;
                let now = stats.snapshot();
                let secs = last_at.elapsed().as_secs_f64().max(1e-9);
                tracing::info!(
                    "throughput: {:.0} msg/s, {:.0} records/s, {:.2} MB/s JSON; totals {} messages, {} records, {} quarantined",
                    (now.stored - last.stored) as f64 / secs,
                    (now.records - last.records) as f64 / secs,
                    (now.json_bytes - last.json_bytes) as f64 / secs / 1e6,
                    now.stored,
                    now.records,
                    now.quarantined
                );
                last = now;
                last_at = Instant::now();
            }
        })
    });
    let filters = config.filters();
    let qos = qos_of(config.qos);
    let mut raw_tx = Some(raw_tx);
    let mut seq = 0u64;
    let mut backoff = Duration::from_millis(100);
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    loop {
        if raw_tx.is_some() && control.shutdown.is_triggered() {
            tracing::info!("shutting down: storing and acknowledging messages in flight");
            raw_tx = None;
            drain_deadline = Some(tokio::time::Instant::now() + Duration::from_secs(30));
        }
        if let Some(d) = drain_deadline {
            if acks_done.load(Ordering::SeqCst) && !stats.connected.load(Ordering::Relaxed) {
                break;
            }
            if tokio::time::Instant::now() >= d {
                tracing::warn!("shutdown: gave up waiting for the broker");
                break;
            }
        }
        let event = tokio::select! {
            _ = control.shutdown.notify.notified(), if raw_tx.is_some() => continue,
            _ = tokio::time::sleep(Duration::from_millis(200)), if drain_deadline.is_some() => continue,
            ev = eventloop.poll() => ev,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                if ack.code != ConnectReturnCode::Success {
                    let target = client_errors::ClientTarget::of_service(config);
                    match client_errors::classify_refusal(ack.code, &target) {
                        Failure::Permanent(message) => return Err(IngestError::Broker(message)),
                        Failure::Transient(message) => tracing::warn!("{message}; reconnecting"),
                    }
                    continue;
                }
                epoch.fetch_add(1, Ordering::SeqCst);
                seq = 0;
                stats.connections.fetch_add(1, Ordering::Relaxed);
                stats.connected.store(true, Ordering::Relaxed);
                backoff = Duration::from_millis(100);
                tracing::info!(
                    "connected to the broker (session present: {}); subscribing to {:?}",
                    ack.session_present,
                    filters
                );
                for f in &filters {
                    if let Err(e) = client.try_subscribe(f.clone(), qos) {
                        tracing::warn!("cannot subscribe to {f}: {e}");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                stats.received.fetch_add(1, Ordering::Relaxed);
                let Some(tx) = &raw_tx else {
                    // Shutting down: leave it unacknowledged for the next run.
                    continue;
                };
                let item = Incoming {
                    topic: publish.topic.clone(),
                    payload: publish.payload.clone(),
                    arrival_ms: now_ms(),
                    ack: Ack::Broker {
                        publish: Publish {
                            payload: bytes::Bytes::new(),
                            ..publish
                        },
                        epoch: epoch.load(Ordering::SeqCst),
                        seq,
                    },
                };
                seq += 1;
                if !send_with_backpressure(tx, item).await {
                    return Err(IngestError::Broker("the decoders stopped".to_owned()));
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                stats.subscriptions.fetch_add(1, Ordering::Relaxed);
                stats.ready.store(true, Ordering::Relaxed);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                if raw_tx.is_none() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                stats.connected.store(false, Ordering::Relaxed);
                if raw_tx.is_none() && acks_done.load(Ordering::SeqCst) {
                    break;
                }
                let target = client_errors::ClientTarget::of_service(config);
                match client_errors::classify(&e, &target) {
                    // Retrying cannot help: stop. What was received is still stored by the
                    // writer (the decoders end as `raw_tx` goes), but not acknowledged: the
                    // broker redelivers it to the next run.
                    Failure::Permanent(message) => return Err(IngestError::Broker(message)),
                    Failure::Transient(message) => {
                        tracing::warn!("{message}; reconnecting in {backoff:?}")
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    stats.connected.store(false, Ordering::Relaxed);
    if let Some(r) = report {
        r.abort();
    }
    drop(raw_tx);
    // The writer may still be finishing; the ack task ends when it has.
    let _ = tokio::time::timeout(Duration::from_secs(30), ack_task).await;
    Ok(())
}
