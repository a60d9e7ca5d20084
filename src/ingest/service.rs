//! The ingest service: MQTT receive -> the ingest pipeline ([`crate::pipeline`], shared with
//! `import`) -> acks.
//!
//! * The network side (tokio, one thread) is either the embedded listener
//!   ([`super::listener`], publishers connect to provdb) or an MQTT client of an external
//!   broker. It hands each publish to the pipeline in arrival order; when its queue is full it
//!   stops reading (backpressure reaches the publisher or broker through TCP).
//! * `decode_threads` decoders turn payloads into records, or into quarantine entries; each
//!   marks the message it decodes, so a message that kills the process is identified at the
//!   next start (`poison`), and catches panics per message.
//! * The writer stage groups messages, in arrival order, into one atomic RocksDB write
//!   (bounded by messages, records and latency), updating the machine registry and quarantine
//!   in the same write, and prepares the next one while the committer fsyncs the last.
//! * Only once a write is durable are its messages acknowledged, in arrival order:
//!   PUBACK/PUBREC by the listener's connection, or manual acks through the client (acks of
//!   messages received on an earlier broker connection are dropped, since the broker
//!   redelivers those anyway).
//! * The new alerts of a durable write are then handed on without waiting ([`super::alerts`]):
//!   to the network task, which publishes them through the external broker's client, or to
//!   the embedded listener's subscribers.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use provdb_storage::{Durability, RecordBatch, SidePut, WriteSummary};
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS,
};

use super::alerts::{self as alert_out, AlertHub, AlertMessage, HubCloser};
use super::client_errors::{self, Failure};
use super::config::{connect_address, BrokerTarget, IngestConfig};
use super::folding;
use super::listener::{self, ListenerSetup, SessionRequest};
use super::poison::{DecodeMarker, PoisonJournal, Strikes, STRIKES_TO_QUARANTINE};
use super::quarantine::QuarantineEntry;
use super::registry::{load_machines, MachineRecord};
use super::wire::fnv1a;
use super::IngestError;
use crate::decode::{self, payload::unwrap_payload, DecodeError};
use crate::detect::Alert;
use crate::pipeline::{self, BatchWrite, Batcher, Feeder, PipelineSettings, TrySend};
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
    pub(crate) alerts_new: AtomicU64,
    pub(crate) alerts_published: AtomicU64,
    pub(crate) alerts_dropped: AtomicU64,
    /// Durable write that raised an alert -> its message handed to the broker client or a
    /// subscriber's socket.
    pub(crate) alert_latency: super::alerts::LatencyHistogram,
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
    /// New alerts (a rule's first firing on an object) raised by durable writes.
    pub alerts_new: u64,
    /// Alert messages handed to the external broker's client, or written to a subscriber of
    /// the embedded listener (one per subscriber).
    pub alerts_published: u64,
    /// Alert messages dropped: a subscriber's queue was full, the broker client's backlog was
    /// full, or the client refused the message.
    pub alerts_dropped: u64,
    /// Median latency from the durable write that raised an alert to its message being handed
    /// to the broker client or a subscriber's socket (`None` before the first).
    pub alert_latency_median: Option<Duration>,
    /// 99th percentile of the same latency.
    pub alert_latency_p99: Option<Duration>,
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
            alerts_new: l(&self.alerts_new),
            alerts_published: l(&self.alerts_published),
            alerts_dropped: l(&self.alerts_dropped),
            alert_latency_median: self.alert_latency.quantile(0.5),
            alert_latency_p99: self.alert_latency.quantile(0.99),
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
    /// An external broker's delivery: acknowledged through the client (the pipeline completes
    /// messages in arrival order, the order brokers expect acks in); `epoch` numbers the
    /// connection it came on. Its payload is not kept here.
    Broker { publish: Publish, epoch: u64 },
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
pub(crate) async fn send_with_backpressure(tx: &Feeder<Incoming>, mut item: Incoming) -> bool {
    loop {
        match tx.try_send(item) {
            Ok(()) => return true,
            Err(TrySend::Full(back)) => {
                item = back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(TrySend::Stopped) => return false,
        }
    }
}

/// Decides what to do with one message: its machine (from the topic) and the outcome.
fn decode_message(
    config: &IngestConfig,
    max_inflated: usize,
    incoming: &Incoming,
) -> (Option<u32>, Outcome) {
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
    let outcome = match payload_json(&incoming.payload, max_inflated) {
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
    max_inflated: usize,
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
        decode_message(config, max_inflated, &incoming)
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

/// Stored messages to acknowledge through an external broker: (publish, connection epoch).
type AckBatch = Vec<(Publish, u64)>;

/// Work for the external broker's client, done in order by the network task.
enum BrokerWork {
    /// Acknowledgements of durable messages.
    Acks(AckBatch),
    /// New alerts of a durable write, to publish.
    Alerts(Vec<AlertMessage>),
}

/// Sends the acknowledgements of durable messages where each belongs.
fn acknowledge(acks: Vec<Ack>, broker_acks: &tokio::sync::mpsc::UnboundedSender<BrokerWork>) {
    let mut batch: AckBatch = Vec::new();
    for ack in acks {
        match ack {
            Ack::Broker { publish, epoch } => batch.push((publish, epoch)),
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
    if broker_acks.send(BrokerWork::Acks(batch)).is_err() {
        tracing::warn!("ack channel closed; messages will be redelivered");
    }
}

/// What one batch of messages added to the service's counters.
#[derive(Debug, Clone, Copy, Default)]
struct BatchCounts {
    stored: u64,
    records: u64,
    json_bytes: u64,
    payload_bytes: u64,
    quarantined: u64,
    ignored: u64,
}

/// A message that a batch quarantined for the first time, logged once the batch is durable
/// (the payload itself is in the quarantine table, not kept here).
struct QuarantinedMessage {
    topic: String,
    kind: String,
    error: String,
}

/// What the committer completes once a batch is durable.
struct Completion {
    acks: Vec<Ack>,
    counts: BatchCounts,
    quarantined_new: Vec<QuarantinedMessage>,
}

impl Completion {
    /// Logs, counts and acknowledges a durable batch.
    fn complete(
        self,
        stats: &IngestStats,
        broker_acks: &tokio::sync::mpsc::UnboundedSender<BrokerWork>,
    ) {
        for q in &self.quarantined_new {
            tracing::warn!(topic = %q.topic, kind = %q.kind, "quarantined a message: {}", q.error);
        }
        let c = self.counts;
        stats.stored.fetch_add(c.stored, Ordering::Relaxed);
        stats.records.fetch_add(c.records, Ordering::Relaxed);
        stats.json_bytes.fetch_add(c.json_bytes, Ordering::Relaxed);
        stats
            .payload_bytes
            .fetch_add(c.payload_bytes, Ordering::Relaxed);
        stats
            .quarantined
            .fetch_add(c.quarantined, Ordering::Relaxed);
        stats.ignored.fetch_add(c.ignored, Ordering::Relaxed);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        acknowledge(self.acks, broker_acks);
    }
}

/// The service's writer-stage policy: groups decoded messages (bounded by messages, records
/// and the pipeline's latency) into one write with the machine registry and quarantine rows.
struct ServeBatcher<'a> {
    db: &'a Database,
    config: &'a IngestConfig,
    /// The registry as of the last prepared write (a write that then fails stops the service).
    registry: HashMap<u32, MachineRecord>,
    pending: Vec<Decoded>,
    records: usize,
}

impl Batcher<Decoded> for ServeBatcher<'_> {
    type Token = Completion;

    fn take(&mut self, d: Decoded) -> crate::Result<bool> {
        self.records += match &d.outcome {
            Outcome::Store { batch, .. } => batch.len(),
            _ => 1,
        };
        self.pending.push(d);
        Ok(self.pending.len() >= self.config.batch_max_messages
            || self.records >= self.config.batch_max_records)
    }

    fn build(&mut self) -> crate::Result<Option<BatchWrite<Completion>>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let pending = std::mem::take(&mut self.pending);
        self.records = 0;
        let mut records = RecordBatch::default();
        let mut side_puts = Vec::new();
        let mut touched: HashMap<u32, MachineRecord> = HashMap::new();
        let mut seen_quarantine: HashSet<[u8; 8]> = HashSet::new();
        let mut quarantined_new = Vec::new();
        let mut c = BatchCounts::default();
        let mut acks = Vec::with_capacity(pending.len());
        for d in pending {
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
            match d.outcome {
                Outcome::Store {
                    batch,
                    json_bytes,
                    description,
                } => {
                    let n = batch.len() as u64;
                    records.append(batch);
                    c.stored += 1;
                    c.records += n;
                    c.json_bytes += json_bytes as u64;
                    c.payload_bytes += bytes;
                    if let Some(r) = record {
                        r.messages += 1;
                        r.records += n;
                        r.bytes += bytes;
                        r.last_seen_ms = r.last_seen_ms.max(arrival);
                        if description.is_some() {
                            r.description = description;
                        }
                    }
                }
                Outcome::Quarantine(entry) => {
                    let key = entry.key();
                    let new = seen_quarantine.insert(key)
                        && self
                            .db
                            .store()
                            .side_get(crate::side_tables::QUARANTINE, &key)?
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
                        side_puts.push(SidePut {
                            table: crate::side_tables::QUARANTINE,
                            key: key.to_vec(),
                            value: entry.encode(),
                        });
                        quarantined_new.push(QuarantinedMessage {
                            topic: entry.topic,
                            kind: entry.kind,
                            error: entry.error,
                        });
                    }
                    c.quarantined += 1;
                }
                Outcome::Ignore => c.ignored += 1,
            }
            acks.push(d.incoming.ack);
        }
        for (m, r) in &touched {
            side_puts.push(SidePut {
                table: crate::side_tables::MACHINES,
                key: MachineRecord::key(*m).to_vec(),
                value: r.encode(),
            });
        }
        self.registry.extend(touched);
        Ok(Some(BatchWrite {
            records,
            side_puts,
            token: Completion {
                acks,
                counts: c,
                quarantined_new,
            },
        }))
    }
}

/// Where the new alerts of durable writes go.
enum AlertSink {
    /// Publishing is off (empty alert topic prefix).
    Off,
    /// The external broker, through the client on the network task; `pending` counts the
    /// messages handed over and not yet given to the client.
    Broker {
        prefix: String,
        pending: Arc<AtomicUsize>,
    },
    /// The embedded listener's subscribers.
    Listener { prefix: String, hub: HubCloser },
}

impl AlertSink {
    /// Hands a durable write's new alerts on, without waiting (this runs on the committer
    /// thread): what cannot be queued is dropped and counted.
    fn publish(
        &self,
        alerts: &[Alert],
        durable_at: Instant,
        stats: &IngestStats,
        broker: &tokio::sync::mpsc::UnboundedSender<BrokerWork>,
    ) {
        let new = alerts.iter().filter(|a| a.count == 1).count() as u64;
        stats.alerts_new.fetch_add(new, Ordering::Relaxed);
        match self {
            AlertSink::Off => {}
            AlertSink::Broker { prefix, pending } => {
                let messages = alert_out::messages_of(prefix, alerts, durable_at);
                let n = messages.len();
                if n == 0 {
                    return;
                }
                // Bounded: a broker away for long must not make the backlog grow without end.
                if pending.load(Ordering::SeqCst) + n > alert_out::MAX_PENDING_BROKER_ALERTS {
                    stats.alerts_dropped.fetch_add(n as u64, Ordering::Relaxed);
                    tracing::warn!(
                        "{n} alert messages dropped: {} are already waiting for the broker (they are in the archive: `provdb alerts`)",
                        alert_out::MAX_PENDING_BROKER_ALERTS
                    );
                    return;
                }
                pending.fetch_add(n, Ordering::SeqCst);
                if broker.send(BrokerWork::Alerts(messages)).is_err() {
                    pending.fetch_sub(n, Ordering::SeqCst);
                    stats.alerts_dropped.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
            AlertSink::Listener { prefix, hub } => {
                let messages: Vec<Arc<AlertMessage>> =
                    alert_out::messages_of(prefix, alerts, durable_at)
                        .into_iter()
                        .map(Arc::new)
                        .collect();
                if !messages.is_empty() {
                    hub.0.publish(&messages);
                }
            }
        }
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
                .map_err(IngestError::Tls)?,
        );
    }
    Ok(o)
}

/// The alert topic prefix to publish under (`None`: publishing off), once checked: a topic
/// without wildcards, outside the topics the service ingests (it would read its own alerts).
fn check_alert_prefix(config: &IngestConfig) -> Result<Option<String>, IngestError> {
    let prefix = config.alert_topic_prefix.as_str();
    if prefix.is_empty() {
        return Ok(None);
    }
    alert_out::check_prefix(prefix).map_err(IngestError::Config)?;
    for machine in [Some(0), None] {
        let topic = alert_out::alert_topic(prefix, machine);
        if topic_kind(config, &topic).0 != TopicKind::Other {
            return Err(IngestError::Config(format!(
                "alert topic prefix `{prefix}`: its topics (such as `{topic}`) are under a \
                 prefix provdb ingests; choose another one"
            )));
        }
    }
    Ok(Some(prefix.to_owned()))
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
    let alert_prefix = check_alert_prefix(config)?;
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
    let markers = (0..config.decode_threads.max(1))
        .map(|i| journal.marker(i))
        .collect::<Result<Vec<_>, _>>()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(IngestError::Runtime)?;
    let shutdown = &control.shutdown;
    let stats = &control.stats;
    let strikes = &strikes;
    // One cap for every way in: the database's (`--max-inflated` of serve and import).
    let max_inflated = db.options().max_inflated;
    let decoders: Vec<_> = markers
        .into_iter()
        .map(|mut marker| {
            move |incoming| decode_guarded(config, max_inflated, incoming, strikes, &mut marker)
        })
        .collect();
    let mut batcher = ServeBatcher {
        db,
        config,
        registry,
        pending: Vec::new(),
        records: 0,
    };
    // Acks (and alerts) through the external broker's client (the listener's acks go to
    // their connections, its alerts to its subscribers).
    let (broker_ack_tx, broker_ack_rx) = tokio::sync::mpsc::unbounded_channel::<BrokerWork>();
    let broker_pending = Arc::new(AtomicUsize::new(0));
    let (sink, hub) = match (&source, alert_prefix) {
        (_, None) => (AlertSink::Off, None),
        (Source::Broker(_), Some(prefix)) => (
            AlertSink::Broker {
                prefix,
                pending: broker_pending.clone(),
            },
            None,
        ),
        (Source::Listener(_), Some(prefix)) => {
            let hub = AlertHub::new(prefix.clone(), stats.clone());
            (
                AlertSink::Listener {
                    prefix,
                    hub: HubCloser(hub.clone()),
                },
                Some(hub),
            )
        }
    };
    // Runs on the committer thread once a write is durable: acknowledge, then publish the
    // alerts it raised. Dropped when the committer ends, which closes the hub.
    let on_durable = move |completion: Completion, _: WriteSummary, alerts: Vec<Alert>| {
        let durable_at = Instant::now();
        completion.complete(stats, &broker_ack_tx);
        if !alerts.is_empty() {
            sink.publish(&alerts, durable_at, stats, &broker_ack_tx);
        }
    };
    let settings = PipelineSettings {
        queue_capacity: config.queue_capacity.max(1),
        max_latency: Some(config.batch_latency),
        durability: Durability::Sync,
    };
    // The network side drops the feeder when it stops, so the decoders, the writer and the
    // committer finish after it, storing and acknowledging everything it handed in.
    let network_result = pipeline::run(
        db.store(),
        &settings,
        db.detector(),
        decoders,
        &mut batcher,
        on_durable,
        |feeder| {
            // Folds beside the network until it stops (set below, whatever it returned).
            let fold_stop = AtomicBool::new(false);
            Ok(std::thread::scope(|scope| {
                if let Some(policy) = config.auto_fold {
                    let stop = &fold_stop;
                    std::thread::Builder::new()
                        .name("folder".to_owned())
                        .spawn_scoped(scope, move || folding::keep_folded(db, policy, stop))
                        .map_err(|e| {
                            IngestError::Database(crate::Error::Thread {
                                name: "folder",
                                source: e,
                            })
                        })?;
                }
                let served = (|| match source {
                    Source::Broker(options) => runtime.block_on(network(
                        config,
                        *options,
                        feeder,
                        broker_ack_rx,
                        broker_pending,
                        control,
                    )),
                    Source::Listener(setup) => {
                        let (session_tx, session_rx) = std::sync::mpsc::channel::<SessionRequest>();
                        std::thread::Builder::new()
                            .name("sessions".to_owned())
                            .spawn_scoped(scope, move || keep_sessions(db, session_rx, shutdown))
                            .map_err(|e| {
                                IngestError::Database(crate::Error::Thread {
                                    name: "session keeper",
                                    source: e,
                                })
                            })?;
                        runtime.block_on(listen(setup, feeder, session_tx, hub, control))
                    }
                })();
                fold_stop.store(true, Ordering::Release);
                served
            }))
        },
    );
    if let Err(e) = &network_result {
        tracing::error!(
            "ingest stopped on an error ({e}); what was not acknowledged will be redelivered"
        );
        shutdown.trigger();
    }
    network_result??;
    let snap = stats.snapshot();
    tracing::info!(
        "ingest stopped: {} messages stored ({} records), {} quarantined; {} new alerts, {} alert messages published, {} dropped",
        snap.stored,
        snap.records,
        snap.quarantined,
        snap.alerts_new,
        snap.alerts_published,
        snap.alerts_dropped
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
    raw_tx: Feeder<Incoming>,
    session_tx: std::sync::mpsc::Sender<SessionRequest>,
    hub: Option<Arc<AlertHub>>,
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
    let result = listener::serve(
        setup,
        raw_tx,
        session_tx,
        hub,
        stats.clone(),
        stop_rx,
        ready,
    )
    .await;
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
    for item in store.side_scan(crate::side_tables::SERVICE_STATE, SESSION_PREFIX) {
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
                store.side_write(
                    &[],
                    &[(crate::side_tables::SERVICE_STATE, key)],
                    Durability::Sync,
                )
            } else {
                Ok(())
            }
        } else if present {
            Ok(())
        } else {
            sessions.insert(id.to_vec());
            let put = SidePut {
                table: crate::side_tables::SERVICE_STATE,
                key,
                value: Vec::new(),
            };
            store.side_write(&[put], &[], Durability::Sync)
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
    raw_tx: Feeder<Incoming>,
    mut ack_rx: tokio::sync::mpsc::UnboundedReceiver<BrokerWork>,
    alerts_pending: Arc<AtomicUsize>,
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
        let stats = stats.clone();
        tokio::spawn(async move {
            while let Some(work) = ack_rx.recv().await {
                match work {
                    // The pipeline completes messages in arrival order, the order brokers
                    // expect acks in; acks of an earlier connection are dropped (the broker
                    // redelivers those).
                    BrokerWork::Acks(batch) => {
                        for (publish, e) in batch {
                            if e < epoch.load(Ordering::SeqCst) {
                                continue;
                            }
                            if let Err(err) = client.ack(&publish).await {
                                tracing::debug!("ack not sent: {err}");
                            }
                        }
                    }
                    // Not tied to a connection: the client sends them once connected, and
                    // resends a QoS 1 publish left unacknowledged by a dropped connection.
                    BrokerWork::Alerts(messages) => {
                        for m in messages {
                            alerts_pending.fetch_sub(1, Ordering::SeqCst);
                            let topic = m.topic;
                            match client
                                .publish_bytes(topic.as_str(), QoS::AtLeastOnce, false, m.payload)
                                .await
                            {
                                Ok(()) => {
                                    stats.alerts_published.fetch_add(1, Ordering::Relaxed);
                                    stats.alert_latency.record(m.durable_at.elapsed());
                                }
                                Err(err) => {
                                    stats.alerts_dropped.fetch_add(1, Ordering::Relaxed);
                                    tracing::warn!("alert not published on {topic}: {err}");
                                }
                            }
                        }
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
                    },
                };
                if !send_with_backpressure(tx, item).await {
                    // A pipeline stage failed: it reports why.
                    return Ok(());
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
