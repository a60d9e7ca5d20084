//! Quarantine: messages that could not be stored (undecodable, or records of another machine
//! than the topic says), kept with their topic, error and arrival time in the `quarantine`
//! side table.
//!
//! Key: a stable 64-bit hash of topic and payload (big-endian), so a redelivered or retried
//! message is quarantined once, like records are stored once. Value: a version byte (1), then
//! arrival time, machine, topic, error kind, error text and the payload as received.

use provdb_storage::Store;

use super::wire::{fnv1a, Reader, Writer};

const VERSION: u8 = 1;

/// One quarantined message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuarantineEntry {
    /// Arrival, milliseconds since the Unix epoch.
    pub arrival_ms: u64,
    /// MQTT topic.
    pub topic: String,
    /// Machine id from the topic, when it has one.
    pub machine: Option<u32>,
    /// Short error kind (`base64`, `zlib`, `json`, `structure`, `machine_mismatch`, `topic`, ...).
    pub kind: String,
    /// Error message.
    pub error: String,
    /// The payload as received.
    pub payload: Vec<u8>,
}

impl QuarantineEntry {
    /// The table key of this message: hash of topic and payload.
    pub fn key(&self) -> [u8; 8] {
        fnv1a(&[self.topic.as_bytes(), &self.payload]).to_be_bytes()
    }

    /// Encodes the value.
    ///
    /// ```
    /// use provdb::ingest::QuarantineEntry;
    /// let e = QuarantineEntry { arrival_ms: 5, topic: "camflow/provenance/1".into(), machine: Some(1),
    ///     kind: "json".into(), error: "bad".into(), payload: b"xyz".to_vec() };
    /// assert_eq!(QuarantineEntry::decode(&e.encode()), Some(e));
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version(VERSION);
        w.u64(self.arrival_ms);
        w.opt_bytes(self.machine.map(u32::to_be_bytes).as_ref().map(|b| &b[..]));
        w.bytes(self.topic.as_bytes());
        w.bytes(self.kind.as_bytes());
        w.bytes(self.error.as_bytes());
        w.bytes(&self.payload);
        w.finish()
    }

    /// Decodes a value (`None` for an unknown version or a damaged value).
    pub fn decode(bytes: &[u8]) -> Option<QuarantineEntry> {
        let mut r = Reader::with_version(bytes, VERSION)?;
        let arrival_ms = r.u64()?;
        let machine = match r.opt_bytes()? {
            Some(b) => Some(u32::from_be_bytes(b.try_into().ok()?)),
            None => None,
        };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Some(QuarantineEntry {
            arrival_ms,
            machine,
            topic: text(r.bytes()?),
            kind: text(r.bytes()?),
            error: text(r.bytes()?),
            payload: r.bytes()?.to_vec(),
        })
    }
}

/// Reads every quarantined message, oldest first. Undecodable entries are skipped with a
/// warning.
pub fn load_quarantine(store: &Store) -> crate::Result<Vec<QuarantineEntry>> {
    let mut out = Vec::new();
    for item in store.side_scan(crate::side_tables::QUARANTINE, &[]) {
        let (_, v) = item?;
        match QuarantineEntry::decode(&v) {
            Some(e) => out.push(e),
            None => tracing::warn!("quarantine: skipping an undecodable entry"),
        }
    }
    out.sort_by(|a, b| a.arrival_ms.cmp(&b.arrival_ms).then(a.topic.cmp(&b.topic)));
    Ok(out)
}
