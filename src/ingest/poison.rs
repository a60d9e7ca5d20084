//! Poison messages: a message whose decoding stops the process (a future decoder bug that
//! aborts, overflows the stack or is killed for memory) would otherwise crash-loop the
//! service, since the broker or publisher redelivers it at every restart.
//!
//! Each decoder thread owns a small marker file. Before it decodes a message it writes the
//! message's key (the hash of topic and payload, as the quarantine uses) and topic there, and
//! clears the mark afterwards: a plain `pwrite`, which reaches the kernel and so survives the
//! death of the process, at about a microsecond per message. At the next start, a marker
//! still set names the message that was being decoded when the process died; it gets a
//! strike, kept durably in the service-state table. A message with [`STRIKES_TO_QUARANTINE`]
//! strikes is quarantined when it arrives again, without being decoded, and acknowledged.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use provdb_storage::{Durability, SidePut, Store};

use super::IngestError;

/// Abnormal exits during a message's decoding after which it is quarantined undecoded.
pub const STRIKES_TO_QUARANTINE: u32 = 2;
/// Longest topic kept in a marker (longer ones are cut; the key identifies the message).
const MAX_MARKER_TOPIC: usize = 1024;
/// Key prefix of strike counts in the service-state table.
const STRIKE_PREFIX: &[u8] = b"poison/";

/// Strike counts of messages that were being decoded at abnormal exits, by message key.
#[derive(Debug, Clone, Default)]
pub(crate) struct Strikes(HashMap<u64, u32>);

impl Strikes {
    /// Strikes of a message.
    pub(crate) fn of(&self, key: u64) -> u32 {
        self.0.get(&key).copied().unwrap_or(0)
    }

    /// True when no message has a strike (the common case: nothing to look up).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The marker files of one service run.
pub(crate) struct PoisonJournal {
    dir: PathBuf,
}

impl PoisonJournal {
    /// The journal beside the archive (`<db>/decoding/`).
    pub(crate) fn open(db_path: &Path) -> Result<PoisonJournal, IngestError> {
        let dir = db_path.join("decoding");
        std::fs::create_dir_all(&dir).map_err(|source| IngestError::Journal {
            path: dir.clone(),
            source,
        })?;
        Ok(PoisonJournal { dir })
    }

    /// Reads the markers the last run left set, adds a durable strike to each message they
    /// name, clears them, and returns every message's strikes.
    pub(crate) fn recover(&self, store: &Store) -> Result<Strikes, IngestError> {
        let mut strikes = HashMap::new();
        for item in store.side_scan(crate::side_tables::SERVICE_STATE, STRIKE_PREFIX) {
            let (k, v) = item?;
            let Some(rest) = k.strip_prefix(STRIKE_PREFIX) else {
                break;
            };
            if let (Ok(key), Ok(count)) = (<[u8; 8]>::try_from(rest), <[u8; 4]>::try_from(&v[..])) {
                strikes.insert(u64::from_be_bytes(key), u32::from_be_bytes(count));
            }
        }
        let entries = std::fs::read_dir(&self.dir).map_err(|source| IngestError::Journal {
            path: self.dir.clone(),
            source,
        })?;
        let mut puts = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            if let Some((key, topic)) = parse_marker(&bytes) {
                let count = strikes.entry(key).or_insert(0);
                *count += 1;
                let what = if *count >= STRIKES_TO_QUARANTINE {
                    "it will be quarantined, undecoded, when it arrives again"
                } else {
                    "if that happens again it will be quarantined"
                };
                tracing::warn!(
                    "a message on `{topic}` (key {key:016x}) was being decoded when provdb last \
                     stopped abnormally ({count} of {STRIKES_TO_QUARANTINE} times); {what}"
                );
                puts.push(SidePut {
                    table: crate::side_tables::SERVICE_STATE,
                    key: strike_key(key),
                    value: count.to_be_bytes().to_vec(),
                });
            }
        }
        // The strikes are durable before the markers are cleared: a crash in between counts
        // a strike at most once more, never loses one.
        if !puts.is_empty() {
            store.side_write(&puts, &[], Durability::Sync)?;
        }
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        Ok(Strikes(strikes))
    }

    /// The marker of decoder thread `index`.
    pub(crate) fn marker(&self, index: usize) -> Result<DecodeMarker, IngestError> {
        let path = self.dir.join(format!("decoder-{index}"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|source| IngestError::Journal {
                path: path.clone(),
                source,
            })?;
        Ok(DecodeMarker {
            file,
            record: Vec::with_capacity(64),
        })
    }
}

fn strike_key(key: u64) -> Vec<u8> {
    let mut k = STRIKE_PREFIX.to_vec();
    k.extend_from_slice(&key.to_be_bytes());
    k
}

/// Marker layout: a flag byte (1 while decoding), the key (8 bytes, big-endian), the topic
/// length (2 bytes, big-endian), the topic.
fn parse_marker(bytes: &[u8]) -> Option<(u64, String)> {
    let (&flag, rest) = bytes.split_first()?;
    if flag != 1 {
        return None;
    }
    let key = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let len = usize::from(u16::from_be_bytes(rest.get(8..10)?.try_into().ok()?));
    let topic = String::from_utf8_lossy(rest.get(10..10 + len)?).into_owned();
    Some((key, topic))
}

/// One decoder thread's marker file.
pub(crate) struct DecodeMarker {
    file: File,
    record: Vec<u8>,
}

impl DecodeMarker {
    /// Marks `key` as being decoded. A failed write only weakens crash-loop protection, so it
    /// is not an error for the message.
    pub(crate) fn begin(&mut self, key: u64, topic: &str) {
        let mut end = topic.len().min(MAX_MARKER_TOPIC);
        while !topic.is_char_boundary(end) {
            end -= 1;
        }
        self.record.clear();
        self.record.push(1);
        self.record.extend_from_slice(&key.to_be_bytes());
        self.record
            .extend_from_slice(&u16::try_from(end).unwrap_or(0).to_be_bytes());
        self.record.extend_from_slice(&topic.as_bytes()[..end]);
        if let Err(e) = self.file.write_all_at(&self.record, 0) {
            tracing::debug!("decode marker not written: {e}");
        }
    }

    /// Clears the mark: the message was decoded.
    pub(crate) fn end(&mut self) {
        if let Err(e) = self.file.write_all_at(&[0], 0) {
            tracing::debug!("decode marker not cleared: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_marker_gives_a_durable_strike_and_is_cleared() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_with(
            tmp.path().join("db"),
            provdb_storage::StoreOptions {
                side_tables: crate::side_tables::ALL.to_vec(),
                ..Default::default()
            },
        )
        .unwrap();
        let journal = PoisonJournal::open(tmp.path()).unwrap();
        assert!(journal.recover(&store).unwrap().is_empty());
        let mut m = journal.marker(0).unwrap();
        m.begin(7, "camflow/provenance/1");
        m.end();
        let mut m1 = journal.marker(1).unwrap();
        m1.begin(9, "camflow/provenance/2");
        // Decoder 1 "died" while decoding message 9; decoder 0 had finished message 7.
        let strikes = journal.recover(&store).unwrap();
        assert_eq!((strikes.of(7), strikes.of(9)), (0, 1));
        // Recovering again finds no marker (cleared), but keeps the strike.
        let strikes = journal.recover(&store).unwrap();
        assert_eq!(strikes.of(9), 1);
        journal.marker(1).unwrap().begin(9, "camflow/provenance/2");
        assert_eq!(journal.recover(&store).unwrap().of(9), 2);
    }

    #[test]
    fn damaged_markers_are_ignored() {
        assert_eq!(parse_marker(&[]), None);
        assert_eq!(parse_marker(&[1, 0, 0]), None);
        assert_eq!(parse_marker(&[0; 20]), None);
        let mut ok = vec![1];
        ok.extend_from_slice(&5u64.to_be_bytes());
        ok.extend_from_slice(&300u16.to_be_bytes());
        ok.extend_from_slice(b"short");
        assert_eq!(parse_marker(&ok), None);
    }
}
