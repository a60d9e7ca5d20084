//! The adjacency snapshot: the adjacency of every edge below a mark as compressed sparse rows in
//! one file beside RocksDB's, written by [`crate::Store::fold_adjacency`]; this module owns the
//! file's byte format and its name.
//!
//! Why: an investigator's first question of a compacted archive pays, per traversal step
//! through RocksDB, an index-partition seek, a filter-partition probe, and the read,
//! decompression and caching of a 4 KiB block. From the snapshot the same step is two reads of
//! the mapped file: the vertex's two offsets, then its record (a few bytes per edge). Since
//! file version 4 the file also maps the covered vertices' external ids both ways
//! ([`ids`]), so that finding a start vertex and returning ids read no RocksDB block either.
//!
//! Folding (`Store::fold_adjacency`) writes generation n+1 from generation n and the adjacency
//! tables' entries of the edges below its mark (beside new writes), then, in one synced write
//! under the writer, names it in `meta` ([`SnapshotPointer`]); compactions drop the tables'
//! entries below the mark from then on. Every store reads adjacency as the merge of the
//! snapshot's record and the tables' entries (edges written since, and folded ones not yet
//! dropped), an entry in both once. The pointer names the file; the file's header repeats the
//! pointer, and a mismatch is corruption, never a fall-back.
//!
//! Layout (integers little-endian):
//! `header (HEADER_LEN bytes) | out records | in records | out offsets | in offsets [| ids]`
//! - ids (version 4): the id section ([`ids`]), where the header's words 3 and 4 (position,
//!   length) say; version 3 wrote zeros there and has none.
//! - offsets of a direction: `vertex_count + 1` integers of the header's offset width (4 bytes
//!   while both directions' records fit 4 GiB, else 8); the record of vertex `v` is the bytes
//!   `offsets[v]..offsets[v + 1]` of that direction's records.
//! - a record: groups of one edge type, in type order, each `type | entries [| bytes]`
//!   (varints; `bytes`, the length of the entries, only when there are two or more) and its
//!   entries. An entry is the edge id's delta from the group's previous one (the first: the id
//!   itself) and the neighbour's id, as varints; edge ids increase within a group.
//! - checksums (32 bits of XXH3-64, of FNV-1a in version 3, seeded with the direction and
//!   vertex, so that a damaged offset that lands on another vertex's bytes is found too): a
//!   record of at most the header's small-record size (4 KiB) has one, after its groups, and is read whole and
//!   verified in one read; a larger one (a hub) has one after each group, so that a read
//!   verifies each group it uses before it yields an entry of it and skips the others unread.
//!   The record of a vertex without entries is its checksum alone (of no bytes): an offset
//!   damaged into an empty range is found, not read as "no edges".
//!   A group holds at most [`MAX_GROUP_BYTES`] of entries (a hub's continues in another group of
//!   the same type), so writing or reading one buffers that much. The two forms are told
//!   apart by the record's length alone.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use rocksdb::ReadOptions;

use crate::codec::{self, SnapshotPointer};
use crate::error::{ReadError, WriteError};
use crate::ids::{EdgeId, TypeId, VertexId};
use crate::keys;
use crate::model::ExternalId;
use crate::tables::{Table, Tables};

mod ids;

/// Start of every adjacency snapshot file's name in the archive's folder (see [`file_name`]);
/// the writer removes every file of this prefix that the archive does not name.
pub const FILE_PREFIX: &str = "provdb-adjacency.";
const MAGIC: [u8; 8] = *b"PROVADJ\x01";
/// 3: the header holds generation, vertex count and edge mark (2, stage one's, held the
/// archive state it was written from).
const VERSION: u32 = 4;
/// The oldest file version this build reads (3: no id section, FNV-1a record checksums).
const OLDEST_VERSION: u32 = 3;
/// The record checksum of the files this build writes.
const WRITTEN_SUM: RecordSum = RecordSum::Xxh3;
const HEADER_LEN: u64 = 136;
/// Words of the header after its first 16 bytes, before its checksum.
const HEADER_WORDS: usize = 14;
/// Entry bytes of one group at most (the writer closes a group once it reaches this).
const MAX_GROUP_BYTES: usize = 1 << 20;
/// Bytes of a group's or a small record's checksum.
const CHECKSUM: usize = 4;
/// Records of at most this many bytes (checksum aside) have one checksum, not one per group.
const SMALL_RECORD: usize = 4096;
/// Bytes read at once from a record.
const CHUNK: usize = 4096;
/// Longest varint of a u64.
const MAX_VARINT: usize = 10;
/// What a corruption error of the snapshot names (also `check`'s invariant).
pub(crate) const WHAT: &str = "adjacency snapshot";

/// Maps `file` read-only, whole.
#[allow(unsafe_code)]
fn map_file(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: a snapshot file is immutable once named: written under a temporary name,
    // synced and renamed; provdb never writes, truncates or reuses it (a later generation is a
    // new file, an old one is only unlinked, which leaves the mapping valid). Another program
    // changing it would break the archive as changing a RocksDB file would.
    unsafe { Mmap::map(file) }
}

/// The name of generation `generation`'s file.
pub fn file_name(generation: u64) -> String {
    format!("{FILE_PREFIX}{generation}.snapshot")
}

/// The archive's snapshot pointer (its `meta` entry), `None` when it has none.
pub(crate) fn read_pointer(tables: &Tables) -> Result<Option<SnapshotPointer>, ReadError> {
    tables
        .db()
        .get_pinned_cf(tables.cf(Table::Meta)?, keys::META_ADJACENCY_SNAPSHOT)?
        .map(|v| codec::decode_snapshot_pointer(&v))
        .transpose()
}

/// What a snapshot file holds, in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Coverage {
    pub(crate) pointer: SnapshotPointer,
    /// Vertices with a record: `0..vertex_count`.
    pub(crate) vertex_count: u64,
}

/// One direction of the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Out,
    In,
}

impl Side {
    fn table(self) -> Table {
        match self {
            Side::Out => Table::OutAdjacency,
            Side::In => Table::InAdjacency,
        }
    }
}

/// Where one direction's regions are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Region {
    records_pos: u64,
    records_len: u64,
    offsets_pos: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    /// The file's version ([`OLDEST_VERSION`] to [`VERSION`]).
    version: u32,
    /// Bytes of one offset: 4 or 8.
    offset_width: u32,
    /// Records up to this many bytes (checksum aside) have one checksum.
    small_record: u64,
    coverage: Coverage,
    out: Region,
    into: Region,
    file_len: u64,
    body_checksum: u64,
    /// The id section (length 0: none).
    ids: IdsPlace,
}

/// Where the id section lies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct IdsPlace {
    pos: u64,
    len: u64,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut h = [0u8; HEADER_LEN as usize];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&self.version.to_le_bytes());
        h[12..16].copy_from_slice(&self.offset_width.to_le_bytes());
        let words = [
            self.coverage.pointer.generation,
            self.coverage.vertex_count,
            self.coverage.pointer.edge_mark,
            self.ids.pos,
            self.ids.len,
            self.out.records_pos,
            self.out.records_len,
            self.out.offsets_pos,
            self.into.records_pos,
            self.into.records_len,
            self.into.offsets_pos,
            self.file_len,
            self.body_checksum,
            self.small_record,
        ];
        for (i, w) in words.iter().enumerate() {
            h[16 + i * 8..24 + i * 8].copy_from_slice(&w.to_le_bytes());
        }
        let end = 16 + HEADER_WORDS * 8;
        let sum = fnv1a(FNV_OFFSET, &h[..end]);
        h[end..end + 8].copy_from_slice(&sum.to_le_bytes());
        h
    }

    /// Decodes and validates a header against the file's length.
    fn decode(h: &[u8; HEADER_LEN as usize], actual_len: u64) -> Result<Header, String> {
        if h[0..8] != MAGIC {
            return Err("not an adjacency snapshot (bad magic)".into());
        }
        let word = |i: usize| le_word(&h[16 + i * 8..24 + i * 8]);
        let mut version = [0u8; 4];
        version.copy_from_slice(&h[8..12]);
        let version = u32::from_le_bytes(version);
        let mut width = [0u8; 4];
        width.copy_from_slice(&h[12..16]);
        let offset_width = u32::from_le_bytes(width);
        if !(OLDEST_VERSION..=VERSION).contains(&version) {
            return Err(format!(
                "snapshot format {version}, this build reads {OLDEST_VERSION} to {VERSION}"
            ));
        }
        let end = 16 + HEADER_WORDS * 8;
        let mut sum = [0u8; 8];
        sum.copy_from_slice(&h[end..end + 8]);
        if u64::from_le_bytes(sum) != fnv1a(FNV_OFFSET, &h[..end]) {
            return Err("header checksum mismatch".into());
        }
        if offset_width != 4 && offset_width != 8 {
            return Err(format!("offsets of {offset_width} bytes"));
        }
        let small_record = word(13);
        if small_record > MAX_GROUP_BYTES as u64 {
            return Err(format!("small records of {small_record} bytes"));
        }
        let header = Header {
            version,
            offset_width,
            small_record,
            coverage: Coverage {
                pointer: SnapshotPointer {
                    generation: word(0),
                    edge_mark: word(2),
                },
                vertex_count: word(1),
            },
            out: Region {
                records_pos: word(5),
                records_len: word(6),
                offsets_pos: word(7),
            },
            into: Region {
                records_pos: word(8),
                records_len: word(9),
                offsets_pos: word(10),
            },
            file_len: word(11),
            body_checksum: word(12),
            ids: IdsPlace {
                pos: word(3),
                len: word(4),
            },
        };
        if header.file_len != actual_len {
            return Err(format!(
                "header says {} bytes, the file has {actual_len}",
                header.file_len
            ));
        }
        let offsets_len = header
            .coverage
            .vertex_count
            .checked_add(1)
            .and_then(|n| n.checked_mul(u64::from(offset_width)))
            .ok_or("vertex count out of range")?;
        for region in [header.out, header.into] {
            let records_end = region.records_pos.checked_add(region.records_len);
            let offsets_end = region.offsets_pos.checked_add(offsets_len);
            let inside = |start: u64, end: Option<u64>| {
                start >= HEADER_LEN && end.is_some_and(|end| end <= header.file_len)
            };
            if !inside(region.records_pos, records_end) || !inside(region.offsets_pos, offsets_end)
            {
                return Err("a region lies outside the file".into());
            }
        }
        Ok(header)
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits: the file's checksum (stable across builds and platforms, unlike the
/// process-seeded hashers; it guards against damage, not against a forger).
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The little-endian integer of up to 8 `bytes` (an offset, count or word of the file).
fn le_word(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

/// The checksum of records, groups (and the id section's blocks): the low 32 bits of FNV-1a
/// in file version 3, of XXH3-64 from version 4 (FNV-1a, a byte at a time, was a sixth of a
/// first-touch 5-hop question; XXH3 reads 16 and more bytes at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordSum {
    Fnv,
    Xxh3,
}

impl RecordSum {
    fn of_version(version: u32) -> RecordSum {
        if version >= 4 {
            RecordSum::Xxh3
        } else {
            RecordSum::Fnv
        }
    }

    /// The checksum of `parts` (one run of bytes, given in pieces) under `seed`.
    fn sum(self, seed: u64, parts: &[&[u8]]) -> u32 {
        match (self, parts) {
            (RecordSum::Fnv, _) => parts.iter().fold(seed, |h, part| fnv1a(h, part)) as u32,
            (RecordSum::Xxh3, [one]) => twox_hash::XxHash3_64::oneshot_with_seed(seed, one) as u32,
            (RecordSum::Xxh3, _) => {
                use std::hash::Hasher as _;
                let mut h = twox_hash::XxHash3_64::with_seed(seed);
                for part in parts {
                    h.write(part);
                }
                h.finish() as u32
            }
        }
    }
}

/// The seed of the checksums of one vertex's groups.
fn group_seed(side: Side, v: VertexId) -> u64 {
    let mut bytes = [0u8; 9];
    bytes[0] = match side {
        Side::Out => b'o',
        Side::In => b'i',
    };
    bytes[1..].copy_from_slice(&v.0.to_le_bytes());
    fnv1a(FNV_OFFSET, &bytes)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Decodes a varint at the start of `bytes`: the value and its length, `None` when `bytes`
/// ends first or the value overflows a u64.
fn get_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().take(MAX_VARINT).enumerate() {
        let low = u64::from(b & 0x7f);
        if i == MAX_VARINT - 1 && low > 1 {
            return None;
        }
        value |= low << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// An open snapshot file.
#[derive(Debug)]
pub(crate) struct AdjacencySnapshot {
    path: PathBuf,
    header: Header,
    /// The whole file, mapped read-only: a read is a copy from memory the kernel fills from
    /// its page cache (a first touch of a page is a minor fault, no system call, no buffer of
    /// our own). The file never changes once named (written under another name, synced,
    /// renamed; later generations are new files), which is what makes the mapping sound.
    map: Mmap,
    /// The id section, when the file has one (version 4).
    ids: Option<ids::IdSection>,
}

impl AdjacencySnapshot {
    /// The snapshot the archive at `dir` names (the pointer in `tables`' `meta`), `None` when
    /// it names none.
    pub(crate) fn named(
        dir: &Path,
        tables: &Tables,
    ) -> Result<Option<Arc<AdjacencySnapshot>>, ReadError> {
        match read_pointer(tables)? {
            None => Ok(None),
            Some(pointer) => AdjacencySnapshot::open(dir, pointer).map(|s| Some(Arc::new(s))),
        }
    }

    /// Opens the file `pointer` names in `dir`. A file that is missing, unreadable, or whose
    /// header does not repeat the pointer is an error: the tables no longer hold its entries.
    pub(crate) fn open(
        dir: &Path,
        pointer: SnapshotPointer,
    ) -> Result<AdjacencySnapshot, ReadError> {
        let path = dir.join(file_name(pointer.generation));
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ReadError::corruption(
                    WHAT,
                    format!("the archive names {}, which is missing", path.display()),
                ))
            }
            Err(source) => return Err(ReadError::File { path, source }),
        };
        let len = file
            .metadata()
            .map_err(|source| ReadError::File {
                path: path.clone(),
                source,
            })?
            .len();
        let mut h = [0u8; HEADER_LEN as usize];
        if len < HEADER_LEN {
            return Err(ReadError::corruption(
                WHAT,
                format!("{}: {len} bytes, shorter than its header", path.display()),
            ));
        }
        file.read_exact_at(&mut h, 0)
            .map_err(|source| ReadError::File {
                path: path.clone(),
                source,
            })?;
        let header = Header::decode(&h, len)
            .map_err(|e| ReadError::corruption(WHAT, format!("{}: {e}", path.display())))?;
        let found = header.coverage.pointer;
        if found != pointer {
            return Err(ReadError::corruption(
                WHAT,
                format!(
                    "{}: the archive names generation {} (edge mark {}), the file holds \
                     generation {} (edge mark {})",
                    path.display(),
                    pointer.generation,
                    pointer.edge_mark,
                    found.generation,
                    found.edge_mark
                ),
            ));
        }
        let map = map_file(&file).map_err(|source| ReadError::File {
            path: path.clone(),
            source,
        })?;
        if (map.len() as u64) < header.file_len {
            return Err(ReadError::corruption(
                WHAT,
                format!("{}: shorter than its header says", path.display()),
            ));
        }
        let ids = match header.ids.len {
            0 => None,
            len => Some(
                ids::IdSection::decode(&map, header.ids.pos, len, header.coverage.vertex_count)
                    .map_err(|e| ReadError::corruption(WHAT, format!("{}: {e}", path.display())))?,
            ),
        };
        Ok(AdjacencySnapshot {
            path,
            header,
            map,
            ids,
        })
    }

    /// The external id of vertex `v` from the id section: `None` when the section does not
    /// cover `v` (or the file has none: ask the tables), `Some(None)` when `v` has no id.
    pub(crate) fn external_id(&self, v: VertexId) -> Result<Option<Option<ExternalId>>, ReadError> {
        match &self.ids {
            None => Ok(None),
            Some(ids) => ids
                .external_id(&self.map, v)
                .map_err(|e| self.corrupt_ids(e)),
        }
    }

    /// The vertex whose external id is `ext`, when the id section holds it; `None`: ask the
    /// tables (a vertex created after the fold, or an id the archive does not have).
    pub(crate) fn vertex_of(&self, ext: &ExternalId) -> Result<Option<VertexId>, ReadError> {
        match &self.ids {
            None => Ok(None),
            Some(ids) => ids
                .vertex_of(&self.map, ext)
                .map_err(|e| self.corrupt_ids(e)),
        }
    }

    /// Verifies the id section's hash index as a whole (see `ids::IdSection::check_index`);
    /// a file without one passes.
    pub(crate) fn check_id_index(&self) -> Result<(), ReadError> {
        match &self.ids {
            None => Ok(()),
            Some(ids) => ids.check_index(&self.map).map_err(|e| self.corrupt_ids(e)),
        }
    }

    /// Hands every external id of the id section to `each`, in vertex order; returns the
    /// vertices the section covers (0 for a file without one: the tables hold their ids).
    pub(crate) fn for_each_external_id<E: From<ReadError>>(
        &self,
        each: impl FnMut(VertexId, ExternalId) -> Result<(), E>,
    ) -> Result<u64, E> {
        match &self.ids {
            None => Ok(0),
            Some(ids) => ids.for_each(&self.map, |e| E::from(self.corrupt_ids(e)), each),
        }
    }

    fn corrupt_ids(&self, detail: String) -> ReadError {
        ReadError::corruption(
            WHAT,
            format!("{}: id section: {detail}", self.path.display()),
        )
    }

    /// What the archive's `meta` names this file by.
    pub(crate) fn pointer(&self) -> SnapshotPointer {
        self.header.coverage.pointer
    }

    /// Vertices the file covers: `0..vertex_count`.
    pub(crate) fn vertex_count(&self) -> u64 {
        self.header.coverage.vertex_count
    }

    /// The file's size in bytes.
    pub(crate) fn file_len(&self) -> u64 {
        self.header.file_len
    }

    fn region(&self, side: Side) -> Region {
        match side {
            Side::Out => self.header.out,
            Side::In => self.header.into,
        }
    }

    /// Fills `buf` with the file's bytes from `pos` (an error past the file's end).
    fn read_at(&self, buf: &mut [u8], pos: u64) -> Result<(), ReadError> {
        let bytes = usize::try_from(pos)
            .ok()
            .and_then(|from| self.map.get(from..from.checked_add(buf.len())?));
        match bytes {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(ReadError::File {
                path: self.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{} bytes at {pos}: past the file's end", buf.len()),
                ),
            }),
        }
    }

    /// Puts a copy of the file into the archive folder `dir` (a backup of an archive that
    /// names it): a hard link where `dir` is on the same file system, else a synced copy, read
    /// from the open file (a secondary may read a generation the writer has removed since).
    pub(crate) fn copy_into(&self, dir: &Path) -> Result<(), WriteError> {
        let dest = dir.join(file_name(self.pointer().generation));
        let io = |source| WriteError::File {
            path: dest.clone(),
            source,
        };
        if std::fs::hard_link(&self.path, &dest).is_err() {
            let mut out = File::create(&dest).map_err(io)?;
            self.read_chunks(0, |chunk| out.write_all(chunk).map_err(io))?;
            out.sync_all().map_err(io)?;
        }
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)
    }

    fn record_sum(&self) -> RecordSum {
        RecordSum::of_version(self.header.version)
    }

    /// Whether the file's body matches the checksum of its header (reads it whole).
    pub(crate) fn verify_checksum(&self) -> Result<bool, ReadError> {
        let mut hash = FNV_OFFSET;
        self.read_chunks(HEADER_LEN, |chunk| {
            hash = fnv1a(hash, chunk);
            Ok::<(), ReadError>(())
        })?;
        Ok(hash == self.header.body_checksum)
    }

    /// Hands the file from `from` to its end to `each`, 1 MiB at a time.
    fn read_chunks<E: From<ReadError>>(
        &self,
        from: u64,
        mut each: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let body = usize::try_from(from)
            .ok()
            .and_then(|from| self.map.get(from..))
            .unwrap_or_default();
        for chunk in body.chunks(1 << 20) {
            each(chunk)?;
        }
        Ok(())
    }

    /// A reader of one direction's records, positioned nowhere ([`SnapshotCursor::restart`]).
    pub(crate) fn cursor(self: &Arc<Self>, side: Side) -> SnapshotCursor {
        SnapshotCursor {
            snapshot: Arc::clone(self),
            side,
            vertex: VertexId(0),
            pos: 0,
            end: 0,
            buf: Vec::new(),
            at: 0,
            group_type: TypeId(0),
            group_left: 0,
            group_bytes_left: 0,
            prev_edge: 0,
            first_in_group: true,
            group_open: false,
            small: false,
            failed: false,
            deferred: None,
        }
    }

    /// Every vertex's entries of one direction in key order (vertex, type, edge), for `check`.
    pub(crate) fn entries(
        self: &Arc<Self>,
        side: Side,
    ) -> impl Iterator<Item = Result<(VertexId, TypeId, EdgeId, VertexId), ReadError>> {
        // A cursor positioned nowhere reads nothing: the first pass moves it to vertex 0.
        let mut cursor = self.cursor(side);
        let vertex_count = self.header.coverage.vertex_count;
        let mut next_vertex = 0u64;
        std::iter::from_fn(move || loop {
            match cursor.next_entry(&[]) {
                Some(Ok((t, e, other))) => return Some(Ok((cursor.vertex, t, e, other))),
                Some(Err(e)) => return Some(Err(e)),
                None => {}
            }
            if next_vertex >= vertex_count {
                return None;
            }
            cursor.restart(VertexId(next_vertex));
            next_vertex += 1;
        })
    }
}

/// Reads the records of one direction, one vertex after another.
pub(crate) struct SnapshotCursor {
    snapshot: Arc<AdjacencySnapshot>,
    side: Side,
    /// The vertex read (for messages).
    vertex: VertexId,
    /// File position of the first byte not yet in `buf`, and the record's end.
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    /// Bytes of `buf` consumed.
    at: usize,
    group_type: TypeId,
    group_left: u64,
    group_bytes_left: u64,
    prev_edge: u64,
    first_in_group: bool,
    /// Whether a group of a large record is being read (its checksum follows its last entry).
    group_open: bool,
    /// Whether the record is small: read whole and verified at `restart`, no group checksums.
    small: bool,
    /// After an error the cursor yields nothing until restarted.
    failed: bool,
    /// An error of `restart` (reading the offsets), yielded by the next read.
    deferred: Option<ReadError>,
}

impl SnapshotCursor {
    fn corrupt(&mut self, detail: impl std::fmt::Display) -> ReadError {
        self.failed = true;
        ReadError::corruption(
            WHAT,
            format!(
                "{}: {:?} record of vertex {}: {detail}",
                self.snapshot.path.display(),
                self.side,
                self.vertex.0
            ),
        )
    }

    /// Moves to the record of `v` (a vertex the snapshot does not know has none).
    pub(crate) fn restart(&mut self, v: VertexId) {
        self.vertex = v;
        self.buf.clear();
        self.at = 0;
        self.group_left = 0;
        self.group_bytes_left = 0;
        self.group_open = false;
        self.small = false;
        self.failed = false;
        self.deferred = None;
        self.pos = 0;
        self.end = 0;
        if v.0 >= self.snapshot.header.coverage.vertex_count {
            return;
        }
        let region = self.snapshot.region(self.side);
        let width = self.snapshot.header.offset_width as usize;
        let mut offsets = [0u8; 16];
        let offsets = &mut offsets[..2 * width];
        if let Err(e) = self
            .snapshot
            .read_at(offsets, region.offsets_pos + v.0 * width as u64)
        {
            self.deferred = Some(e);
            return;
        }
        let (start, end) = (le_word(&offsets[..width]), le_word(&offsets[width..]));
        if start > end || end > region.records_len {
            let e = self.corrupt(format!(
                "offsets {start}..{end} outside {} bytes",
                region.records_len
            ));
            self.deferred = Some(e);
            return;
        }
        self.pos = region.records_pos + start;
        self.end = region.records_pos + end;
        let len = end - start;
        if len == 0 {
            // Every record has its checksum at least.
            let e = self.corrupt("a record without its checksum");
            self.deferred = Some(e);
            return;
        }
        if len > self.snapshot.header.small_record + CHECKSUM as u64 {
            return;
        }
        // A small record: read whole, verified, its checksum dropped.
        self.small = true;
        let result = self.fill(len as usize).and_then(|()| {
            let body = (len as usize)
                .checked_sub(CHECKSUM)
                .filter(|_| self.buf.len() == len as usize);
            let Some(body) = body else {
                return Err(self.corrupt(format!("a record of {len} bytes")));
            };
            let mut sum = [0u8; CHECKSUM];
            sum.copy_from_slice(&self.buf[body..]);
            let record_sum = self.snapshot.record_sum();
            if record_sum.sum(group_seed(self.side, v), &[&self.buf[..body]])
                != u32::from_le_bytes(sum)
            {
                return Err(self.corrupt("a record does not match its checksum"));
            }
            self.buf.truncate(body);
            Ok(())
        });
        if let Err(e) = result {
            self.deferred = Some(e);
        }
    }

    /// Makes at least `need` unread bytes available in `buf`, or all that is left.
    fn fill(&mut self, need: usize) -> Result<(), ReadError> {
        let have = self.buf.len() - self.at;
        if have >= need || self.pos >= self.end {
            return Ok(());
        }
        self.buf.drain(..self.at);
        self.at = 0;
        let n = (self.end - self.pos).min(CHUNK.max(need) as u64) as usize;
        let old = self.buf.len();
        self.buf.resize(old + n, 0);
        let pos = self.pos;
        if let Err(e) = self.snapshot.read_at(&mut self.buf[old..], pos) {
            self.failed = true;
            return Err(e);
        }
        self.pos += n as u64;
        Ok(())
    }

    fn varint(&mut self) -> Result<u64, ReadError> {
        self.fill(MAX_VARINT)?;
        match get_varint(&self.buf[self.at..]) {
            Some((value, len)) => {
                self.at += len;
                Ok(value)
            }
            None => Err(self.corrupt("truncated or overlong number")),
        }
    }

    /// Skips `n` bytes of the record without reading them.
    fn skip(&mut self, n: u64) -> Result<(), ReadError> {
        let buffered = (self.buf.len() - self.at) as u64;
        if n <= buffered {
            self.at += n as usize;
            return Ok(());
        }
        self.at = self.buf.len();
        let rest = n - buffered;
        if rest > self.end - self.pos {
            return Err(self.corrupt("a group runs past the record's end"));
        }
        self.pos += rest;
        Ok(())
    }

    fn at_end(&self) -> bool {
        self.at == self.buf.len() && self.pos >= self.end
    }

    /// The next entry of the record over `types` (sorted; all when empty): its edge type, edge
    /// and neighbour.
    pub(crate) fn next_entry(
        &mut self,
        types: &[TypeId],
    ) -> Option<Result<(TypeId, EdgeId, VertexId), ReadError>> {
        if let Some(e) = self.deferred.take() {
            self.failed = true;
            return Some(Err(e));
        }
        if self.failed {
            return None;
        }
        match self.step(types) {
            Ok(entry) => entry.map(Ok),
            Err(e) => {
                self.failed = true;
                self.buf.clear();
                Some(Err(e))
            }
        }
    }

    fn step(&mut self, types: &[TypeId]) -> Result<Option<(TypeId, EdgeId, VertexId)>, ReadError> {
        while self.group_left == 0 {
            if self.group_bytes_left != 0 {
                return Err(self.corrupt("a group's bytes exceed its entries"));
            }
            if self.group_open {
                // Its checksum, verified when the group was opened.
                self.at += CHECKSUM;
                self.group_open = false;
            }
            if self.at_end() {
                return Ok(None);
            }
            self.fill(5 * MAX_VARINT)?;
            let head_start = self.at;
            let t = self.varint()?;
            let count = self.varint()?;
            let bytes = if count == 1 {
                // One entry: its two numbers say how long it is.
                let rest = &self.buf[self.at..];
                let first = get_varint(rest).map(|(_, n)| n);
                let second = first.and_then(|n| get_varint(&rest[n..]).map(|(_, m)| n + m));
                second.ok_or_else(|| self.corrupt("truncated or overlong number"))? as u64
            } else {
                self.varint()?
            };
            let t = u16::try_from(t).map_err(|_| self.corrupt(format!("edge type {t}")))?;
            if count == 0
                || bytes < count.saturating_mul(2)
                || bytes > (MAX_GROUP_BYTES + 2 * MAX_VARINT) as u64
            {
                return Err(self.corrupt(format!("a group of {count} entries in {bytes} bytes")));
            }
            let t = TypeId(t);
            if !types.is_empty() && types.binary_search(&t).is_err() {
                if types.last().is_some_and(|last| t > *last) {
                    // Groups are in type order: none of the types asked for is left.
                    self.pos = self.end;
                    self.at = self.buf.len();
                    return Ok(None);
                }
                let checksum = if self.small { 0 } else { CHECKSUM as u64 };
                self.skip(bytes + checksum)?;
                continue;
            }
            if !self.small {
                // The group's head may leave the buffer when it refills: kept aside.
                let head = self.buf[head_start..self.at].to_vec();
                let len = bytes as usize;
                self.fill(len + CHECKSUM)?;
                let verified = match self.buf.get(self.at..self.at + len + CHECKSUM) {
                    Some(group) => {
                        let (entries, stored) = group.split_at(len);
                        let mut sum = [0u8; CHECKSUM];
                        sum.copy_from_slice(stored);
                        let seed = group_seed(self.side, self.vertex);
                        let found = self.snapshot.record_sum().sum(seed, &[&head, entries]);
                        Some(found == u32::from_le_bytes(sum))
                    }
                    None => None,
                };
                match verified {
                    Some(true) => {}
                    Some(false) => return Err(self.corrupt("a group does not match its checksum")),
                    None => return Err(self.corrupt("a group runs past the record's end")),
                }
                self.group_open = true;
            } else if (self.buf.len() - self.at) < bytes as usize {
                return Err(self.corrupt("a group runs past the record's end"));
            }
            self.group_type = t;
            self.group_left = count;
            self.group_bytes_left = bytes;
            self.prev_edge = 0;
            self.first_in_group = true;
        }
        let before = self.at_position();
        let delta = self.varint()?;
        let neighbour = self.varint()?;
        let used = self.at_position() - before;
        self.group_bytes_left = self
            .group_bytes_left
            .checked_sub(used)
            .ok_or_else(|| self.corrupt("entries run past their group"))?;
        if !self.first_in_group && delta == 0 {
            return Err(self.corrupt("edge ids repeat in a group"));
        }
        let edge = self
            .prev_edge
            .checked_add(delta)
            .ok_or_else(|| self.corrupt("edge id out of range"))?;
        self.prev_edge = edge;
        self.first_in_group = false;
        self.group_left -= 1;
        Ok(Some((self.group_type, EdgeId(edge), VertexId(neighbour))))
    }

    /// Bytes of the record consumed so far, counted from the file.
    fn at_position(&self) -> u64 {
        self.pos - (self.buf.len() - self.at) as u64
    }
}

/// A writer that hashes what it writes (the body checksum) and counts it.
struct Hashing<W: Write> {
    inner: W,
    hash: u64,
    written: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash = fnv1a(self.hash, &buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The records of one direction being written: the open group and the offsets so far.
struct RecordWriter<'a, W: Write, O: Write> {
    side: Side,
    /// The vertex whose record is being written.
    vertex: VertexId,
    /// A group is closed once its entries reach this many bytes.
    max_group_bytes: usize,
    records: &'a mut Hashing<W>,
    offsets: O,
    /// Where this direction's records start in the file.
    records_pos: u64,
    /// Next vertex whose offset is not written.
    next_vertex: u64,
    /// Records up to this many bytes get one checksum.
    small_record: usize,
    /// The closed groups of the record being gathered, and where each starts.
    record: Vec<u8>,
    record_groups: Vec<usize>,
    /// Whether the record outgrew `small_record` (its groups are written as they close).
    large: bool,
    group: Vec<u8>,
    group_type: Option<TypeId>,
    group_count: u64,
    prev_edge: u64,
}

impl<W: Write, O: Write> RecordWriter<'_, W, O> {
    fn record_offset(&self) -> u64 {
        self.records.written - self.records_pos
    }

    /// Closes the open group: into the record being gathered while it is small, else
    /// written with its checksum.
    fn flush_group(&mut self) -> std::io::Result<()> {
        if let Some(t) = self.group_type.take() {
            let start = self.record.len();
            put_varint(&mut self.record, u64::from(t.0));
            put_varint(&mut self.record, self.group_count);
            if self.group_count > 1 {
                put_varint(&mut self.record, self.group.len() as u64);
            }
            self.record.extend_from_slice(&self.group);
            self.record_groups.push(start);
            self.group.clear();
            self.group_count = 0;
            self.prev_edge = 0;
            if self.large || self.record.len() > self.small_record {
                self.write_groups()?;
            }
        }
        Ok(())
    }

    /// Writes the gathered groups each with its checksum: the record is large.
    fn write_groups(&mut self) -> std::io::Result<()> {
        self.large = true;
        let seed = group_seed(self.side, self.vertex);
        let ends = self.record_groups[1..]
            .iter()
            .copied()
            .chain([self.record.len()]);
        for (start, end) in self.record_groups.iter().copied().zip(ends) {
            let group = &self.record[start..end];
            self.records.write_all(group)?;
            self.records
                .write_all(&WRITTEN_SUM.sum(seed, &[group]).to_le_bytes())?;
        }
        self.record.clear();
        self.record_groups.clear();
        Ok(())
    }

    /// Ends the vertex's record: a small one is written with its one checksum.
    fn finish_record(&mut self) -> std::io::Result<()> {
        self.flush_group()?;
        if !self.large && !self.record.is_empty() {
            let seed = group_seed(self.side, self.vertex);
            self.records.write_all(&self.record)?;
            self.records
                .write_all(&WRITTEN_SUM.sum(seed, &[&self.record]).to_le_bytes())?;
        }
        self.record.clear();
        self.record_groups.clear();
        self.large = false;
        Ok(())
    }

    /// Writes offsets up to and including vertex `upto` (the start of its record), and the
    /// records of the vertices before it that have no entries: their checksum alone, so that
    /// a damaged offset never reads as "no edges".
    fn offsets_through(&mut self, upto: u64) -> std::io::Result<()> {
        while self.next_vertex <= upto {
            self.offsets
                .write_all(&self.record_offset().to_le_bytes())?;
            if self.next_vertex < upto {
                let seed = group_seed(self.side, VertexId(self.next_vertex));
                self.records
                    .write_all(&WRITTEN_SUM.sum(seed, &[&[]]).to_le_bytes())?;
            }
            self.next_vertex += 1;
        }
        Ok(())
    }
}

/// Writes the file of `coverage`'s generation into `dir`: the entries of `previous` (the
/// generation in use, if any) merged with the adjacency tables' entries of the edges below
/// `coverage`'s mark (writes may run beside: their edges are above it), through a temporary
/// file renamed into place once synced. Returns its size.
pub(crate) fn write(
    tables: &Tables,
    dir: &Path,
    previous: Option<&Arc<AdjacencySnapshot>>,
    coverage: Coverage,
) -> Result<u64, WriteError> {
    write_with_sizes(
        tables,
        dir,
        previous,
        coverage,
        MAX_GROUP_BYTES,
        SMALL_RECORD,
    )
}

/// [`write`] with groups closed at `max_group_bytes` and records over `small_record` bytes
/// checksummed per group (tests make both small).
fn write_with_sizes(
    tables: &Tables,
    dir: &Path,
    previous: Option<&Arc<AdjacencySnapshot>>,
    coverage: Coverage,
    max_group_bytes: usize,
    small_record: usize,
) -> Result<u64, WriteError> {
    let name = file_name(coverage.pointer.generation);
    let path = dir.join(&name);
    let tmp = dir.join(format!("{name}.tmp"));
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| WriteError::File { path: p, source }
    };
    let mut file = File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(&[0u8; HEADER_LEN as usize])
        .map_err(io(&tmp))?;
    let mut body = Hashing {
        inner: BufWriter::with_capacity(1 << 20, file),
        hash: FNV_OFFSET,
        written: HEADER_LEN,
    };
    let mut offset_files = Vec::new();
    let mut regions = [Region::default(); 2];
    for (i, side) in [Side::Out, Side::In].into_iter().enumerate() {
        let offsets_path = dir.join(format!("{name}.offsets-{i}.tmp"));
        let offsets = BufWriter::new(File::create(&offsets_path).map_err(io(&offsets_path))?);
        let records_pos = body.written;
        let mut w = RecordWriter {
            side,
            vertex: VertexId(0),
            max_group_bytes,
            small_record,
            record: Vec::new(),
            record_groups: Vec::new(),
            large: false,
            records: &mut body,
            offsets,
            records_pos,
            next_vertex: 0,
            group: Vec::new(),
            group_type: None,
            group_count: 0,
            prev_edge: 0,
        };
        write_direction(tables, previous, side, coverage, &mut w, &tmp)?;
        let mut offsets = w.offsets;
        offsets.flush().map_err(io(&offsets_path))?;
        regions[i].records_pos = records_pos;
        regions[i].records_len = body.written - records_pos;
        offset_files.push(offsets_path);
    }
    // The offsets were written as u64s; most archives' records fit 4 GiB, and 4-byte offsets
    // save a byte per edge.
    let offset_width: u32 = if regions.iter().all(|r| r.records_len <= u64::from(u32::MAX)) {
        4
    } else {
        8
    };
    for (i, offsets_path) in offset_files.iter().enumerate() {
        regions[i].offsets_pos = body.written;
        let mut src = std::io::BufReader::new(File::open(offsets_path).map_err(io(offsets_path))?);
        let mut word = [0u8; 8];
        loop {
            match std::io::Read::read_exact(&mut src, &mut word) {
                Ok(()) => body
                    .write_all(&word[..offset_width as usize])
                    .map_err(io(&tmp))?,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(io(offsets_path)(e)),
            }
        }
        std::fs::remove_file(offsets_path).map_err(io(offsets_path))?;
    }
    // A version-1 archive has no vertex -> id table (and never folds).
    let ids = if tables.has_vertex_external_ids() {
        let pos = body.written;
        let previous = previous.map(|p| &**p);
        let len = ids::write_section(tables, previous, coverage.vertex_count, &mut body, &tmp)?;
        IdsPlace { pos, len }
    } else {
        IdsPlace::default()
    };
    let header = Header {
        version: VERSION,
        offset_width,
        small_record: small_record as u64,
        coverage,
        out: regions[0],
        into: regions[1],
        file_len: body.written,
        body_checksum: body.hash,
        ids,
    };
    let mut file = body.inner.into_inner().map_err(|e| WriteError::File {
        path: tmp.clone(),
        source: e.into_error(),
    })?;
    file.seek(SeekFrom::Start(0)).map_err(io(&tmp))?;
    file.write_all(&header.encode()).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(header.file_len)
}

/// One adjacency entry: vertex, edge type, edge, neighbour.
type Entry = (VertexId, TypeId, EdgeId, VertexId);

fn write_direction<W: Write, O: Write>(
    tables: &Tables,
    previous: Option<&Arc<AdjacencySnapshot>>,
    side: Side,
    coverage: Coverage,
    w: &mut RecordWriter<'_, W, O>,
    tmp: &Path,
) -> Result<(), WriteError> {
    let Coverage {
        vertex_count,
        pointer: SnapshotPointer { edge_mark, .. },
    } = coverage;
    let io = |source| WriteError::File {
        path: tmp.to_path_buf(),
        source,
    };
    let mut opts = ReadOptions::default();
    opts.set_total_order_seek(true);
    let mut it = tables
        .db()
        .raw_iterator_cf_opt(tables.cf(side.table())?, opts);
    it.seek_to_first();
    // The tables' entries of the edges below the mark: those written since the fold was
    // planned (beside it) stay in the tables for the next one.
    let table_entry = |it: &mut rocksdb::DBRawIterator<'_>| -> Result<Option<Entry>, WriteError> {
        loop {
            let Some(key) = it.key() else {
                it.status().map_err(ReadError::from)?;
                return Ok(None);
            };
            let entry = keys::decode_adjacency_key(key).ok_or_else(|| {
                WriteError::corruption("adjacency key", format!("{} bytes", key.len()))
            })?;
            if entry.2 .0 < edge_mark {
                return Ok(Some(entry));
            }
            it.next();
        }
    };
    // Both sources are in (vertex, type, edge) order: one ordered merge. An entry in both (a
    // fold cut short after it wrote the snapshot back into the tables) is written once.
    let mut old_entries = previous.map(|p| p.entries(side));
    let mut next_old = move || -> Result<Option<Entry>, WriteError> {
        Ok(old_entries.as_mut().and_then(|e| e.next()).transpose()?)
    };
    let mut old = next_old()?;
    let mut table = table_entry(&mut it)?;
    let mut current: Option<VertexId> = None;
    loop {
        let key = |e: &Entry| (e.0, e.1, e.2);
        let (entry, from_old, from_table) = match (old, table) {
            (None, None) => break,
            (Some(o), None) => (o, true, false),
            (None, Some(t)) => (t, false, true),
            (Some(o), Some(t)) => match key(&o).cmp(&key(&t)) {
                std::cmp::Ordering::Less => (o, true, false),
                std::cmp::Ordering::Greater => (t, false, true),
                std::cmp::Ordering::Equal => (t, true, true),
            },
        };
        if from_old {
            old = next_old()?;
        }
        if from_table {
            it.next();
            table = table_entry(&mut it)?;
        }
        let (v, t, e, other) = entry;
        if v.0 >= vertex_count {
            return Err(WriteError::corruption(
                "adjacency key",
                format!(
                    "vertex {} at or above the next vertex id {vertex_count}",
                    v.0
                ),
            ));
        }
        if current != Some(v) {
            w.finish_record().map_err(io)?;
            w.offsets_through(v.0).map_err(io)?;
            w.vertex = v;
            current = Some(v);
        }
        if w.group_type != Some(t) || w.group.len() >= w.max_group_bytes {
            w.flush_group().map_err(io)?;
            w.group_type = Some(t);
        }
        if w.group_count > 0 && e.0 <= w.prev_edge {
            return Err(WriteError::corruption(
                "adjacency key",
                format!("vertex {} repeats edge {} of type {}", v.0, e.0, t.0),
            ));
        }
        put_varint(&mut w.group, e.0 - w.prev_edge);
        put_varint(&mut w.group, other.0);
        w.prev_edge = e.0;
        w.group_count += 1;
    }
    w.finish_record().map_err(io)?;
    // The offsets of the vertices after the last with entries, and the end of the last record.
    w.offsets_through(vertex_count).map_err(io)?;
    Ok(())
}

/// Removes every snapshot file of `dir` but generation `keep`'s (and temporary files of a
/// write cut short): a fold cut short leaves the new generation unnamed or the old one named
/// no more.
pub(crate) fn remove_unnamed(dir: &Path, keep: Option<u64>) -> Result<(), WriteError> {
    let keep = keep.map(file_name);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError::File { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(FILE_PREFIX) && Some(name) != keep.as_deref() {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&entry.path())(e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(n in any::<u64>()) {
            let mut out = Vec::new();
            put_varint(&mut out, n);
            prop_assert_eq!(get_varint(&out), Some((n, out.len())));
            prop_assert_eq!(get_varint(&out[..out.len() - 1]), None);
        }

        #[test]
        fn header_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), HEADER_LEN as usize), len in any::<u64>()) {
            let mut h = [0u8; HEADER_LEN as usize];
            h.copy_from_slice(&bytes);
            let _ = Header::decode(&h, len);
        }
    }

    /// A hub's groups split every few bytes: every read, whole or typed, from the first
    /// entry or restarted, answers as the column families do.
    #[test]
    fn split_groups_read_as_the_tables_do() {
        use crate::model::*;
        use crate::store::Store;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let types = ["read", "write", "clone"];
        let endpoint = |v: String| EndpointInput {
            ext_id: ExternalId::parse(&v),
            type_hint: None,
        };
        let edges = (0..300)
            .map(|i| EdgeInput {
                ext_id: ExternalId::parse(&format!("e{i}")),
                type_name: types[i % 3].into(),
                relation: ProvRelation::Used,
                // Vertex h is the hub; the others have an edge or two.
                src: endpoint(if i % 5 == 0 {
                    format!("x{i}")
                } else {
                    "h".into()
                }),
                dst: endpoint(format!("d{}", i % 7)),
                placement: Placement::default(),
                attrs: vec![],
            })
            .collect();
        store
            .write(&RecordBatch {
                edges,
                ..Default::default()
            })
            .unwrap();
        for (max_group, small) in [(6, 0), (6, 40), (64, 4096), (MAX_GROUP_BYTES, SMALL_RECORD)] {
            write_with_sizes(
                &store.tables,
                dir.path(),
                None,
                coverage(&store),
                max_group,
                small,
            )
            .unwrap();
            reads_as_the_tables_do(&store, dir.path(), &types);
        }

        // Records checksummed per group (every record large): any byte of a record damaged,
        // each read answers as the tables do or fails, never otherwise.
        write_with_sizes(&store.tables, dir.path(), None, coverage(&store), 6, 0).unwrap();
        let path = dir.path().join(file_name(1));
        let pristine = std::fs::read(&path).unwrap();
        let header = AdjacencySnapshot::open(dir.path(), coverage(&store).pointer)
            .unwrap()
            .header;
        let records = header.out.records_pos..header.into.records_pos + header.into.records_len;
        let mut failed_reads = 0;
        for at in records.step_by(7) {
            let mut damaged = pristine.clone();
            damaged[at as usize] ^= 0x21;
            std::fs::write(&path, &damaged).unwrap();
            let snapshot =
                Arc::new(AdjacencySnapshot::open(dir.path(), coverage(&store).pointer).unwrap());
            for (side, direction) in [(Side::Out, Direction::Out), (Side::In, Direction::In)] {
                let mut cursor = snapshot.cursor(side);
                for v in 0..store.vertex_count().unwrap() {
                    let want: Vec<(TypeId, EdgeId, VertexId)> = store
                        .neighbours(VertexId(v), direction, &[])
                        .map(|a| {
                            let a = a.unwrap();
                            (a.edge_type, a.edge, a.neighbour)
                        })
                        .collect();
                    cursor.restart(VertexId(v));
                    let got: Result<Vec<_>, ReadError> =
                        std::iter::from_fn(|| cursor.next_entry(&[])).collect();
                    match got {
                        Ok(got) => assert_eq!(got, want, "byte {at}: vertex {v}"),
                        Err(_) => failed_reads += 1,
                    }
                }
            }
        }
        assert!(failed_reads > 0);
        store.close().unwrap();
    }

    /// Generation 1 of the store as it is (not folded: its tables stay whole).
    fn coverage(store: &crate::store::Store) -> Coverage {
        let counters = store.tables.read_counters().unwrap();
        Coverage {
            pointer: SnapshotPointer {
                generation: 1,
                edge_mark: counters.next_edge,
            },
            vertex_count: counters.next_vertex,
        }
    }

    fn reads_as_the_tables_do(store: &crate::store::Store, dir: &Path, types: &[&str]) {
        use crate::model::*;
        let snapshot = Arc::new(AdjacencySnapshot::open(dir, coverage(store).pointer).unwrap());
        assert!(snapshot.verify_checksum().unwrap());
        let mut filters: Vec<Vec<TypeId>> = vec![vec![]];
        for t in types {
            filters.push(vec![store.edge_type_id(t).unwrap()]);
        }
        let mut two = vec![filters[1][0], filters[3][0]];
        two.sort();
        filters.push(two);
        filters.push(vec![TypeId(999)]);
        for (side, direction) in [(Side::Out, Direction::Out), (Side::In, Direction::In)] {
            let mut cursor = snapshot.cursor(side);
            for v in 0..store.vertex_count().unwrap() + 2 {
                for filter in &filters {
                    let want: Vec<(TypeId, EdgeId, VertexId)> = store
                        .neighbours(VertexId(v), direction, filter)
                        .map(|a| {
                            let a = a.unwrap();
                            (a.edge_type, a.edge, a.neighbour)
                        })
                        .collect();
                    cursor.restart(VertexId(v));
                    let got: Vec<_> =
                        std::iter::from_fn(|| cursor.next_entry(filter).map(|r| r.unwrap()))
                            .collect();
                    assert_eq!(got, want, "{side:?} vertex {v} types {filter:?}");
                }
            }
            let all: Vec<_> = snapshot.entries(side).map(|r| r.unwrap()).collect();
            assert_eq!(all.len(), 300);
        }
    }

    #[test]
    fn an_overlong_varint_is_refused() {
        assert_eq!(get_varint(&[0xff; 10]), None);
        assert_eq!(
            get_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None
        );
        assert_eq!(
            get_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Some((u64::MAX, 10))
        );
    }

    #[test]
    fn a_header_round_trips_and_any_flipped_byte_is_refused() {
        let header = Header {
            version: VERSION,
            offset_width: 8,
            small_record: 4096,
            coverage: Coverage {
                pointer: SnapshotPointer {
                    generation: 7,
                    edge_mark: 2,
                },
                vertex_count: 3,
            },
            out: Region {
                records_pos: 136,
                records_len: 10,
                offsets_pos: 148,
            },
            into: Region {
                records_pos: 138,
                records_len: 10,
                offsets_pos: 180,
            },
            file_len: 212,
            body_checksum: 99,
            ids: IdsPlace { pos: 200, len: 12 },
        };
        let bytes = header.encode();
        assert_eq!(Header::decode(&bytes, 212), Ok(header));
        assert!(Header::decode(&bytes, 213).is_err());
        for i in 0..HEADER_LEN as usize {
            let mut damaged = bytes;
            damaged[i] ^= 0x10;
            assert!(Header::decode(&damaged, 212).is_err(), "byte {i}");
        }
    }
}
