//! The machine registry: one record per CamFlow machine seen by the service, kept in the
//! `machines` side table and updated in the same atomic write as the machine's records.
//!
//! Key: the machine id as 4 big-endian bytes. Value: a version byte (1) then fixed-width
//! little-endian counters and a length-prefixed description.

use provdb_storage::Store;

use super::wire::{Reader, Writer};

const VERSION: u8 = 1;

/// What the registry knows of one machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineRecord {
    /// CamFlow machine id (from the topic).
    pub machine: u32,
    /// First message, milliseconds since the Unix epoch.
    pub first_seen_ms: u64,
    /// Latest message, milliseconds since the Unix epoch.
    pub last_seen_ms: u64,
    /// Messages received (stored or quarantined; keep-alives excluded).
    pub messages: u64,
    /// Records (vertices + edges) decoded from its stored messages.
    pub records: u64,
    /// Payload bytes received (base64 text as sent).
    pub bytes: u64,
    /// Messages put into quarantine.
    pub rejected: u64,
    /// Machine description (legacy `camflow/machines/<id>` document, JSON text), if any.
    pub description: Option<String>,
}

impl MachineRecord {
    /// A fresh record seen first at `now_ms`.
    pub fn new(machine: u32, now_ms: u64) -> MachineRecord {
        MachineRecord {
            machine,
            first_seen_ms: now_ms,
            last_seen_ms: now_ms,
            ..Default::default()
        }
    }

    /// Registry key of a machine.
    pub fn key(machine: u32) -> [u8; 4] {
        crate::side_tables::machine_registry_key(machine)
    }

    /// Encodes the value.
    ///
    /// ```
    /// use provdb::ingest::MachineRecord;
    /// let mut r = MachineRecord::new(7, 1000);
    /// r.messages = 3;
    /// r.description = Some("{}".into());
    /// assert_eq!(MachineRecord::decode(7, &r.encode()), Some(r));
    /// assert_eq!(MachineRecord::decode(7, b"\x09junk"), None);
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version(VERSION);
        w.u64(self.first_seen_ms);
        w.u64(self.last_seen_ms);
        w.u64(self.messages);
        w.u64(self.records);
        w.u64(self.bytes);
        w.u64(self.rejected);
        w.opt_bytes(self.description.as_deref().map(str::as_bytes));
        w.finish()
    }

    /// Decodes a value (`None` when it is not a version this code knows).
    pub fn decode(machine: u32, bytes: &[u8]) -> Option<MachineRecord> {
        let mut r = Reader::with_version(bytes, VERSION)?;
        Some(MachineRecord {
            machine,
            first_seen_ms: r.u64()?,
            last_seen_ms: r.u64()?,
            messages: r.u64()?,
            records: r.u64()?,
            bytes: r.u64()?,
            rejected: r.u64()?,
            description: r
                .opt_bytes()?
                .map(|b| String::from_utf8_lossy(b).into_owned()),
        })
    }
}

/// Reads the whole registry, in machine-id order. Undecodable entries are skipped with a
/// warning.
pub fn load_machines(store: &Store) -> crate::Result<Vec<MachineRecord>> {
    let mut out = Vec::new();
    for item in store.side_scan(crate::side_tables::MACHINES, &[]) {
        let (k, v) = item?;
        let Some(machine) = k
            .get(..4)
            .and_then(|s| s.try_into().ok())
            .map(u32::from_be_bytes)
        else {
            tracing::warn!("machine registry: skipping a key of {} bytes", k.len());
            continue;
        };
        match MachineRecord::decode(machine, &v) {
            Some(r) => out.push(r),
            None => tracing::warn!("machine registry: undecodable record of machine {machine}"),
        }
    }
    Ok(out)
}
