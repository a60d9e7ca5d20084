//! Alerts out of `serve`: each new alert (the first time a rule fires on an object; a repeat
//! only raises the stored alert's count) is published as its JSON ([`Alert::to_json`]) on
//! `<alert_topic_prefix><machine>` once the write that raised it is durable, at QoS 1:
//!
//! * through the external broker's client (`serve --broker`), from the network task, so the
//!   committer thread never waits on the network;
//! * or, with the embedded listener, to the connections that subscribed to a matching filter
//!   ([`AlertHub`]): each has a bounded queue; when a subscriber cannot keep up, alerts for it
//!   are dropped and counted, never waited for.
//!
//! Delivery is live: a subscriber gets the alerts raised while it is connected and subscribed;
//! nothing is queued for a disconnected one and a message it did not acknowledge is not sent
//! again. The archive (`provdb alerts`) is the durable record of every alert.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rumqttc::{QoS, SubscribeReasonCode};
use tokio::sync::mpsc;

use super::service::IngestStats;
use crate::detect::Alert;

/// Alert messages queued for one subscriber of the embedded listener; more are dropped.
pub(crate) const SUBSCRIBER_QUEUE: usize = 1024;
/// Topic filters one connection may hold (a subscription beyond is refused).
pub(crate) const MAX_FILTERS_PER_CONNECTION: usize = 64;
/// Alert messages waiting for the external broker's client; more are dropped (the broker
/// is away or slower than detection).
pub(crate) const MAX_PENDING_BROKER_ALERTS: usize = 10_000;

/// One alert, ready to go out.
#[derive(Debug)]
pub(crate) struct AlertMessage {
    pub(crate) topic: String,
    pub(crate) payload: bytes::Bytes,
    /// When the write that raised it was durable (where its latency starts).
    pub(crate) durable_at: Instant,
}

/// The topic of an alert: the prefix, then the machine id of its completing edge (`unknown`
/// when the edge carried none).
///
/// ```
/// use provdb::ingest::alerts::alert_topic;
/// assert_eq!(alert_topic("camflow/alerts/", Some(42)), "camflow/alerts/42");
/// assert_eq!(alert_topic("camflow/alerts/", None), "camflow/alerts/unknown");
/// ```
pub fn alert_topic(prefix: &str, machine: Option<u32>) -> String {
    match machine {
        Some(m) => format!("{prefix}{m}"),
        None => format!("{prefix}unknown"),
    }
}

/// The messages of a durable batch's alerts: only new ones (`count == 1`); a repeat of an
/// existing alert was already published when it was new.
pub(crate) fn messages_of(
    prefix: &str,
    alerts: &[Alert],
    durable_at: Instant,
) -> Vec<AlertMessage> {
    alerts
        .iter()
        .filter(|a| a.count == 1)
        .map(|a| AlertMessage {
            topic: alert_topic(prefix, a.machine),
            payload: bytes::Bytes::from(a.to_json().to_string()),
            durable_at,
        })
        .collect()
}

/// Checks an alert topic prefix: a topic may not hold MQTT wildcards or NUL.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.contains(['+', '#', '\0']) {
        return Err(format!(
            "alert topic prefix `{}`: MQTT topics cannot contain `+`, `#` or NUL",
            prefix.escape_debug()
        ));
    }
    Ok(())
}

/// True when `filter` is a valid MQTT 3.1.1 topic filter (4.7.1): not empty, no NUL, `#` only
/// as the whole last level, `+` only as a whole level.
///
/// ```
/// use provdb::ingest::alerts::valid_filter;
/// assert!(valid_filter("camflow/alerts/#") && valid_filter("+/alerts/+") && valid_filter("#"));
/// assert!(!valid_filter("camflow/alerts#") && !valid_filter("a/#/b") && !valid_filter("a+/b"));
/// ```
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(i, level)| match *level {
        "#" => i == last,
        "+" => true,
        l => !l.contains(['+', '#']),
    })
}

/// True when the (valid) filter matches the topic (MQTT 3.1.1, 4.7): `+` one level, `#` the
/// rest including none, and a filter starting with a wildcard does not match a `$` topic.
///
/// ```
/// use provdb::ingest::alerts::filter_matches;
/// assert!(filter_matches("camflow/alerts/#", "camflow/alerts/7"));
/// assert!(filter_matches("camflow/+/7", "camflow/alerts/7"));
/// assert!(filter_matches("camflow/alerts/#", "camflow/alerts"));
/// assert!(!filter_matches("camflow/alerts/+", "camflow/alerts/7/x"));
/// assert!(!filter_matches("#", "$SYS/x"));
/// ```
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for f in filter.split('/') {
        if f == "#" {
            return true;
        }
        match topic_levels.next() {
            Some(t) if f == "+" || f == t => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

/// True when the filter can match some alert topic `<prefix><machine>`, a machine being a
/// decimal id or `unknown`.
fn may_match_alerts(filter: &str, prefix: &str) -> bool {
    // The machine is the end of the topic's last level. Wildcards take any machine, so one
    // example decides, unless the filter spells that level out: then it names the machine.
    let level = prefix.split('/').count() - 1;
    let last_of_prefix = prefix.rsplit('/').next().unwrap_or("");
    let machine = match filter.split('/').nth(level) {
        Some(f) if f != "+" && f != "#" => match f.strip_prefix(last_of_prefix) {
            Some(m) if m == "unknown" || m.parse::<u32>().is_ok() => m,
            _ => return false,
        },
        _ => "0",
    };
    filter_matches(filter, &format!("{prefix}{machine}"))
}

/// One alert message for one subscriber, at the QoS its subscription granted.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) message: Arc<AlertMessage>,
    pub(crate) qos: QoS,
}

struct Subscriber {
    client_id: String,
    filters: Vec<(String, QoS)>,
    /// `None` once the hub closed: the connection then sees its queue end.
    tx: Option<mpsc::Sender<Delivery>>,
    dropped: u64,
}

/// The embedded listener's subscribers and the alerts for them. The committer thread hands
/// alerts in ([`AlertHub::publish`], never blocking); each connection takes its own from a
/// bounded queue.
pub(crate) struct AlertHub {
    prefix: String,
    subscribers: Mutex<HashMap<u64, Subscriber>>,
    closed: AtomicBool,
    stats: Arc<IngestStats>,
}

impl AlertHub {
    pub(crate) fn new(prefix: String, stats: Arc<IngestStats>) -> Arc<AlertHub> {
        Arc::new(AlertHub {
            prefix,
            subscribers: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            stats,
        })
    }

    /// Answers a SUBSCRIBE of connection `connection`: a valid filter that can match an alert
    /// topic is granted at min(requested QoS, 1); any other filter is refused (failure code),
    /// since nothing but alerts is ever published to subscribers. `tx` (the connection's
    /// queue) is taken on the first grant.
    pub(crate) fn subscribe(
        &self,
        connection: u64,
        client_id: &str,
        tx: &mut Option<mpsc::Sender<Delivery>>,
        filters: &[(String, QoS)],
    ) -> Vec<SubscribeReasonCode> {
        let mut codes = vec![SubscribeReasonCode::Failure; filters.len()];
        // Checked before taking the lock (the committer takes it to publish), and no filter
        // beyond the per-connection limit is even looked at: a SUBSCRIBE of millions of
        // filters costs little.
        let candidates: Vec<(usize, &String, QoS)> = filters
            .iter()
            .enumerate()
            .take(MAX_FILTERS_PER_CONNECTION)
            .filter(|(_, (f, _))| valid_filter(f) && may_match_alerts(f, &self.prefix))
            .map(|(i, (f, requested))| {
                let qos = match requested {
                    QoS::AtMostOnce => QoS::AtMostOnce,
                    _ => QoS::AtLeastOnce,
                };
                (i, f, qos)
            })
            .collect();
        if candidates.is_empty() {
            return codes;
        }
        let mut subscribers = self.subscribers.lock();
        let entry = match subscribers.entry(connection) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let Some(queue) = tx.take() else {
                    return codes;
                };
                e.insert(Subscriber {
                    client_id: client_id.to_owned(),
                    filters: Vec::new(),
                    // After the hub closed, a new subscriber gets nothing (its queue ends).
                    tx: (!self.closed.load(Ordering::SeqCst)).then_some(queue),
                    dropped: 0,
                })
            }
        };
        for (i, filter, qos) in candidates {
            // MQTT 3.1.1 (3.8.4): a subscription to the same filter replaces the old one.
            if let Some(existing) = entry.filters.iter_mut().find(|(f, _)| f == filter) {
                existing.1 = qos;
            } else if entry.filters.len() >= MAX_FILTERS_PER_CONNECTION {
                continue;
            } else {
                entry.filters.push((filter.clone(), qos));
            }
            if let Some(code) = codes.get_mut(i) {
                *code = SubscribeReasonCode::Success(qos);
            }
        }
        codes
    }

    /// Removes filters of a connection (UNSUBSCRIBE).
    pub(crate) fn unsubscribe(&self, connection: u64, filters: &[String]) {
        // Hashed before taking the lock: the packet may name very many filters.
        let gone: std::collections::HashSet<&str> = filters.iter().map(String::as_str).collect();
        if let Some(s) = self.subscribers.lock().get_mut(&connection) {
            s.filters.retain(|(f, _)| !gone.contains(f.as_str()));
        }
    }

    /// Forgets a closed connection.
    pub(crate) fn remove(&self, connection: u64) {
        if let Some(s) = self.subscribers.lock().remove(&connection) {
            if s.dropped > 0 {
                tracing::warn!(
                    "subscriber `{}` left; {} alert messages were dropped for it (it read too slowly)",
                    s.client_id.escape_debug(),
                    s.dropped
                );
            }
        }
    }

    /// Hands alert messages to every subscriber whose filters match, without waiting: a full
    /// queue drops the message for that subscriber (counted, logged on the first drop).
    pub(crate) fn publish(&self, messages: &[Arc<AlertMessage>]) {
        let mut subscribers = self.subscribers.lock();
        for s in subscribers.values_mut() {
            let Some(tx) = &s.tx else { continue };
            for m in messages {
                let granted = s
                    .filters
                    .iter()
                    .filter(|(f, _)| filter_matches(f, &m.topic))
                    .map(|(_, q)| *q)
                    .max_by_key(|q| *q as u8);
                // One message per matching connection, at the highest QoS granted (3.3.5).
                let Some(qos) = granted else { continue };
                let delivery = Delivery {
                    message: m.clone(),
                    qos,
                };
                match tx.try_send(delivery) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        s.dropped += 1;
                        self.stats.alerts_dropped.fetch_add(1, Ordering::Relaxed);
                        if s.dropped == 1 {
                            tracing::warn!(
                                "subscriber `{}` reads alerts too slowly: its queue of {SUBSCRIBER_QUEUE} is full, dropping alert messages for it",
                                s.client_id.escape_debug()
                            );
                        }
                    }
                    // The connection is closing.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
    }

    /// No alert will come any more (the pipeline ended): each subscriber's queue ends once
    /// drained, so connections waiting for the last alerts at shutdown can close.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for s in self.subscribers.lock().values_mut() {
            s.tx = None;
        }
    }
}

/// Closes the hub when dropped (held by the committer's callback, dropped when it ends).
pub(crate) struct HubCloser(pub(crate) Arc<AlertHub>);

impl Drop for HubCloser {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Buckets below this many microseconds are exact.
const EXACT_BELOW: u64 = 128;
/// Buckets per power of two above (resolution 1/64, about 1.6 %).
const PER_OCTAVE: usize = 64;
const BUCKETS: usize = EXACT_BELOW as usize + (64 - 7) * PER_OCTAVE;

/// A latency histogram (microseconds, log-linear buckets): lock-free to record from any
/// thread, percentiles within 1.6 %.
pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.count())
            .finish()
    }
}

fn bucket_of(us: u64) -> usize {
    if us < EXACT_BELOW {
        return us as usize;
    }
    let octave = 63 - us.leading_zeros() as usize; // 7..=63
    let sub = ((us >> (octave - 6)) & 63) as usize;
    EXACT_BELOW as usize + (octave - 7) * PER_OCTAVE + sub
}

/// The middle of a bucket, in microseconds.
fn bucket_value(index: usize) -> u64 {
    if index < EXACT_BELOW as usize {
        return index as u64;
    }
    let i = index - EXACT_BELOW as usize;
    let octave = 7 + i / PER_OCTAVE;
    let sub = (i % PER_OCTAVE) as u64;
    let width = 1u64 << (octave - 6);
    ((64 + sub) << (octave - 6)).saturating_add(width / 2)
}

impl LatencyHistogram {
    /// Records one latency.
    pub fn record(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if let Some(b) = self.buckets.get(bucket_of(us)) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Latencies recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The latency at quantile `q` (0.5: median, 0.99: p99), `None` before the first.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Duration::from_micros(bucket_value(i)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_of_the_alert_space_are_granted_others_refused() {
        let p = "camflow/alerts/";
        for f in [
            "camflow/alerts/#",
            "camflow/alerts/+",
            "camflow/alerts/42",
            "camflow/alerts/unknown",
            "camflow/+/+",
            "+/+/7",
            "#",
            "camflow/#",
        ] {
            assert!(may_match_alerts(f, p), "{f}");
        }
        for f in [
            "camflow/provenance/+",
            "camflow/alerts",
            "camflow/alerts/x",
            "camflow/alerts/1/x",
            "camflow/alerts/-1",
            "$share/g/camflow/alerts/#",
            "+/+",
        ] {
            assert!(!may_match_alerts(f, p), "{f}");
        }
        // A prefix that does not end with `/`: the machine ends the last level.
        assert!(may_match_alerts("alerts-7", "alerts-"));
        assert!(may_match_alerts("+", "alerts-"));
        assert!(!may_match_alerts("alerts-x", "alerts-"));
        assert!(!may_match_alerts("other", "alerts-"));
        // `$` topics are matched only by a filter that spells the `$` out.
        assert!(!may_match_alerts("#", "$alerts/"));
        assert!(may_match_alerts("$alerts/#", "$alerts/"));
    }

    #[test]
    fn hub_grants_qos_at_most_one_and_delivers_by_filter() {
        let stats = Arc::new(IngestStats::default());
        let hub = AlertHub::new("camflow/alerts/".to_owned(), stats);
        let (tx, mut rx) = mpsc::channel(4);
        let mut tx = Some(tx);
        let codes = hub.subscribe(
            1,
            "soc",
            &mut tx,
            &[
                ("camflow/alerts/7".to_owned(), QoS::ExactlyOnce),
                ("camflow/provenance/+".to_owned(), QoS::AtLeastOnce),
                ("camflow/alerts/+".to_owned(), QoS::AtMostOnce),
                ("bad#".to_owned(), QoS::AtMostOnce),
            ],
        );
        assert_eq!(
            codes,
            [
                SubscribeReasonCode::Success(QoS::AtLeastOnce),
                SubscribeReasonCode::Failure,
                SubscribeReasonCode::Success(QoS::AtMostOnce),
                SubscribeReasonCode::Failure,
            ]
        );
        assert!(tx.is_none(), "the hub took the queue");
        let now = Instant::now();
        let m = |topic: &str| {
            Arc::new(AlertMessage {
                topic: topic.to_owned(),
                payload: bytes::Bytes::from_static(b"{}"),
                durable_at: now,
            })
        };
        hub.publish(&[m("camflow/alerts/7"), m("camflow/alerts/8"), m("other/7")]);
        let a = rx.try_recv().expect("first");
        assert_eq!(
            (a.message.topic.as_str(), a.qos),
            ("camflow/alerts/7", QoS::AtLeastOnce)
        );
        let b = rx.try_recv().expect("second");
        assert_eq!(
            (b.message.topic.as_str(), b.qos),
            ("camflow/alerts/8", QoS::AtMostOnce)
        );
        assert!(rx.try_recv().is_err(), "nothing for other/7");
        hub.unsubscribe(1, &["camflow/alerts/+".to_owned()]);
        hub.publish(&[m("camflow/alerts/8")]);
        assert!(rx.try_recv().is_err(), "unsubscribed");
        hub.close();
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn filters_beyond_the_limit_are_refused_unread() {
        let hub = AlertHub::new("a/".to_owned(), Arc::new(IngestStats::default()));
        let (tx, _rx) = mpsc::channel(1);
        let mut tx = Some(tx);
        let many: Vec<(String, QoS)> = (0..100_000)
            .map(|i| (format!("a/{i}"), QoS::AtLeastOnce))
            .collect();
        let codes = hub.subscribe(1, "greedy", &mut tx, &many);
        let granted = codes
            .iter()
            .filter(|c| **c != SubscribeReasonCode::Failure)
            .count();
        assert_eq!(
            (codes.len(), granted),
            (100_000, MAX_FILTERS_PER_CONNECTION)
        );
        // Once full, only a filter it already has is granted (again).
        let again = hub.subscribe(
            1,
            "greedy",
            &mut tx,
            &[
                ("a/0".to_owned(), QoS::AtMostOnce),
                ("a/#".to_owned(), QoS::AtMostOnce),
            ],
        );
        assert_eq!(
            again,
            [
                SubscribeReasonCode::Success(QoS::AtMostOnce),
                SubscribeReasonCode::Failure
            ]
        );
        let names: Vec<String> = many.into_iter().map(|(f, _)| f).collect();
        hub.unsubscribe(1, &names);
        let after = hub.subscribe(
            1,
            "greedy",
            &mut tx,
            &[("a/#".to_owned(), QoS::AtLeastOnce)],
        );
        assert_eq!(after, [SubscribeReasonCode::Success(QoS::AtLeastOnce)]);
    }

    #[test]
    fn a_full_subscriber_queue_drops_and_counts_without_waiting() {
        let stats = Arc::new(IngestStats::default());
        let hub = AlertHub::new("a/".to_owned(), stats.clone());
        let (tx, mut rx) = mpsc::channel(2);
        let mut tx = Some(tx);
        hub.subscribe(1, "slow", &mut tx, &[("a/#".to_owned(), QoS::AtLeastOnce)]);
        let m = Arc::new(AlertMessage {
            topic: "a/1".to_owned(),
            payload: bytes::Bytes::new(),
            durable_at: Instant::now(),
        });
        hub.publish(&[m.clone(), m.clone(), m.clone(), m]);
        assert_eq!(stats.snapshot().alerts_dropped, 2);
        assert!(rx.try_recv().is_ok() && rx.try_recv().is_ok() && rx.try_recv().is_err());
        hub.remove(1);
    }

    #[test]
    fn histogram_quantiles_are_within_two_percent() {
        let h = LatencyHistogram::default();
        assert_eq!(h.quantile(0.5), None);
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        let close = |got: Option<Duration>, want: f64| {
            let got = got.expect("some").as_micros() as f64;
            assert!((got - want).abs() / want < 0.02, "{got} vs {want}");
        };
        close(h.quantile(0.5), 5_000.0);
        close(h.quantile(0.99), 9_900.0);
        h.record(Duration::from_secs(1_000_000_000));
        assert_eq!(h.count(), 10_001);
        for us in [0u64, 1, 127, 128, 255, 256, 1 << 40, u64::MAX] {
            let b = bucket_of(us);
            assert!(b < BUCKETS, "{us}");
            let v = bucket_value(b);
            assert!(us < 128 && v == us || (v as f64 - us as f64).abs() / (us as f64) < 0.02);
        }
    }
}
