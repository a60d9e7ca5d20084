//! Alerts: what a rule raised, with the causal path that explains it, stored in the
//! [`crate::side_tables::ALERTS`] table in the same write as the batch that completed it.
//!
//! Keys of the table (this module owns their format):
//! - `a` + id (8 bytes, big-endian) -> the alert;
//! - `k` + rule + `\0` + anchor -> id (deduplication: one alert per rule and object);
//! - `n` -> the next id (8 bytes, big-endian).

use provdb_storage::{SidePut, Store};

use super::rules::Severity;
use crate::side_tables::ALERTS;
use crate::{Error, Result};

const ALERT_PREFIX: u8 = b'a';
const DEDUP_PREFIX: u8 = b'k';
pub(crate) const NEXT_ID_KEY: &[u8] = b"n";

/// A vertex of an alert's path.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct PathVertex {
    /// External id (CamFlow's base64 identifier).
    pub id: String,
    /// CamFlow type.
    pub type_name: String,
    /// Path, program or remote address, when known.
    pub name: Option<String>,
}

/// An edge of an alert's path, in information-flow direction.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct PathEdge {
    /// External id.
    pub id: String,
    /// CamFlow relation type.
    pub type_name: String,
    /// External id of the sender.
    pub from: String,
    /// External id of the receiver.
    pub to: String,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub struct Alert {
    /// Number, unique in the archive, in the order alerts were raised.
    pub id: u64,
    /// The rule's name.
    pub rule: String,
    /// The rule's severity (as its name).
    pub severity: String,
    /// CamFlow machine id of the completing edge.
    pub machine: Option<u32>,
    /// Time of the completing edge (Unix seconds).
    pub time: Option<i64>,
    /// Who did what to what, in a sentence.
    pub summary: String,
    /// The causal path, in order: where the data came from, to the completing edge.
    pub path: Vec<PathVertex>,
    /// The path's edges, the completing edge last.
    pub edges: Vec<PathEdge>,
    /// Times the rule fired on the same object (deduplication).
    pub count: u64,
    /// Time of the latest completing edge.
    pub last_seen: Option<i64>,
}

impl Alert {
    /// The severity as a [`Severity`].
    pub fn severity(&self) -> Option<Severity> {
        Severity::parse(&self.severity)
    }

    /// The alert as JSON with exactly the keys `id`, `rule`, `severity`, `machine`, `time`
    /// (ISO 8601 UTC), `summary`, `path` (`id`, `type`, `name`) and `edges` (`id`, `type`,
    /// `from`, `to`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "rule": self.rule,
            "severity": self.severity,
            "machine": self.machine,
            "time": self.time.map(|t| provdb_query::Datum::Time(t).to_string()),
            "summary": self.summary,
            "path": self.path.iter().map(|v| serde_json::json!({
                "id": v.id, "type": v.type_name, "name": v.name,
            })).collect::<Vec<_>>(),
            "edges": self.edges.iter().map(|e| serde_json::json!({
                "id": e.id, "type": e.type_name, "from": e.from, "to": e.to,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Only alerts whose last completing edge is at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Only this machine's.
    pub machine: Option<u32>,
    /// Only this rule's.
    pub rule: Option<String>,
    /// Only this severity and above.
    pub min_severity: Option<Severity>,
}

impl AlertFilter {
    /// True when the alert passes.
    pub fn accepts(&self, a: &Alert) -> bool {
        self.since
            .is_none_or(|s| a.last_seen.or(a.time).is_some_and(|t| t >= s))
            && self.machine.is_none_or(|m| a.machine == Some(m))
            && self.rule.as_ref().is_none_or(|r| a.rule == *r)
            && self
                .min_severity
                .is_none_or(|s| a.severity().is_some_and(|own| own >= s))
    }
}

pub(crate) fn alert_key(id: u64) -> Vec<u8> {
    let mut k = vec![ALERT_PREFIX];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub(crate) fn dedup_key(rule: &str, anchor: &str) -> Vec<u8> {
    let mut k = vec![DEDUP_PREFIX];
    k.extend_from_slice(rule.as_bytes());
    k.push(0);
    k.extend_from_slice(anchor.as_bytes());
    k
}

fn config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<{ 16 << 20 }>,
> {
    bincode::config::standard().with_limit::<{ 16 << 20 }>()
}

pub(crate) fn encode(alert: &Alert) -> Vec<u8> {
    // Encoding a plain struct into a Vec cannot fail.
    bincode::encode_to_vec(alert, config()).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Result<Alert> {
    bincode::decode_from_slice(bytes, config())
        .map(|(a, _)| a)
        .map_err(|e| Error::CorruptAlert(e.to_string()))
}

pub(crate) fn put(alert: &Alert) -> SidePut {
    SidePut {
        table: ALERTS,
        key: alert_key(alert.id),
        value: encode(alert),
    }
}

/// The alert with this id.
pub(crate) fn get(store: &Store, id: u64) -> Result<Option<Alert>> {
    match store.side_get(ALERTS, &alert_key(id))? {
        Some(bytes) => Ok(Some(decode(&bytes)?)),
        None => Ok(None),
    }
}

/// The alert id stored for a deduplication key.
pub(crate) fn id_of(store: &Store, key: &[u8]) -> Result<Option<u64>> {
    Ok(store
        .side_get(ALERTS, key)?
        .and_then(|v| v.as_slice().try_into().ok().map(u64::from_be_bytes)))
}

/// The next alert id on disk.
pub(crate) fn next_id(store: &Store) -> Result<u64> {
    Ok(id_of(store, NEXT_ID_KEY)?.unwrap_or(1))
}

/// Every alert that passes the filter, in id order.
pub(crate) fn list(store: &Store, filter: &AlertFilter) -> Result<Vec<Alert>> {
    let mut out = Vec::new();
    for item in store.side_scan(ALERTS, &[ALERT_PREFIX]) {
        let (key, value) = item?;
        if key.first() != Some(&ALERT_PREFIX) {
            break;
        }
        let alert = decode(&value)?;
        if filter.accepts(&alert) {
            out.push(alert);
        }
    }
    Ok(out)
}
