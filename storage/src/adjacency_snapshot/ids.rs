//! The id section of an adjacency snapshot (file version 4): for the vertices the snapshot
//! covers, vertex -> external id and external id -> vertex, read from the mapped file.
//!
//! Why: on a folded archive a first-touch question's traversal no longer reads RocksDB, but
//! finding its start vertex (`external_ids`) and returning ids (`vertex_external_ids`) still
//! read, verify and decompress a RocksDB block per id: a 3-hop question returning 8 ids spent
//! half its time there. The id -> vertex index is a copy of `external_ids` (the writer
//! resolves ids there): a look-up it cannot answer goes to the table. The vertex -> id blocks
//! are, from archive format 5 on, the only copy besides the vertex records: a fold deletes the
//! covered vertices' `vertex_external_ids` entries (a second copy of every id cost some 5 bytes
//! an edge) and the next fold carries them over ([`source_ids`]).
//!
//! Layout, from the section's start (little-endian):
//! - blocks: the external ids of vertices `32b .. 32b + 32` in block `b`, each an entry whose
//!   first byte gives its kind in the low nibble (`0` none; `1` a binary id; `2` a text id:
//!   varint length, bytes); a binary id is stored against the block's previous binary id
//!   (zeros before the first): the high nibble flags which of its four 8-byte words differ,
//!   and each flagged word is a mask byte of its changed bytes, then those bytes. Then the
//!   block's checksum (4 bytes of XXH3, seeded with `b`);
//! - `block_count + 1` block offsets (relative to the blocks' start; `offset_width` bytes);
//! - the hash index: `entry_count` entries `tag (2) | vertex (vertex_width)` grouped by bucket,
//!   then `bucket_count + 1` entry numbers (`vertex_width` bytes) where each bucket starts.
//!   A bucket and a tag come from a keyed SipHash-1-3 of the id ([`slot`]; the key is drawn at
//!   random for each file and kept in it, so that ids sent by a compromised machine cannot be
//!   chosen to fill one bucket). A matching tag is verified against the vertex's block, so a
//!   damaged index can only miss (then the tables answer), never name a wrong vertex;
//! - a footer of [`FOOTER_LEN`] bytes: vertex count, the hash key, the blocks' length, entry and
//!   bucket counts, the two widths.
//!
//! A CamFlow id (32 bytes) differs from its block's previous one in a few bytes (same machine,
//! boot and type; a near counter): about 9 bytes per vertex instead of 33.

use std::hash::Hasher as _;
use std::io::Write;
use std::path::Path;

use rocksdb::ReadOptions;
use siphasher::sip::SipHasher13;

use super::{fnv1a, get_varint, le_word, put_varint, AdjacencySnapshot, RecordSum, FNV_OFFSET};
use crate::codec;
use crate::error::{ReadError, WriteError};
use crate::ids::VertexId;
use crate::keys;
use crate::model::ExternalId;
use crate::tables::{Table, Tables};

/// Vertices per block (a read decodes up to this many entries).
const BLOCK_VERTICES: u64 = 32;
/// Bytes of the footer.
pub(super) const FOOTER_LEN: u64 = 64;
const KIND_NONE: u8 = 0;
const KIND_BINARY: u8 = 1;
const KIND_TEXT: u8 = 2;
/// The bits of an entry's first byte that give its kind (a binary entry's high nibble flags
/// the 8-byte words that differ from the previous id).
const KIND_BITS: u8 = 0x0f;
/// Bytes of an index entry's tag (the high 16 bits of the id's hash; a bucket's other ids
/// rarely share it, and a match is verified).
const TAG: usize = 2;
/// Bytes of a block's checksum.
const CHECKSUM: usize = 4;
/// Ids per bucket of the hash index, on average (a look-up reads one bucket's entries).
const IDS_PER_BUCKET: u64 = 8;
/// Index entries the writer holds at once: more ids are indexed in several passes over the
/// table, a range of buckets each (24 bytes an entry in memory: some 100 MB).
const ENTRIES_PER_PASS: u64 = 4 << 20;

/// Where an id section's parts lie (absolute positions in the file) and how they are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IdSection {
    vertex_count: u64,
    key: (u64, u64),
    blocks_pos: u64,
    blocks_len: u64,
    block_offsets_pos: u64,
    offset_width: u64,
    entries_pos: u64,
    entry_count: u64,
    vertex_width: u64,
    buckets_pos: u64,
    bucket_count: u64,
}

impl IdSection {
    /// Reads and validates the section `pos..pos + len` of `file` for a snapshot of
    /// `vertex_count` vertices: every part must lie inside it.
    pub(super) fn decode(
        file: &[u8],
        pos: u64,
        len: u64,
        vertex_count: u64,
    ) -> Result<IdSection, String> {
        let end = pos.checked_add(len).ok_or("id section out of range")?;
        if len < FOOTER_LEN || end > file.len() as u64 {
            return Err("id section outside the file".into());
        }
        let footer = &file[(end - FOOTER_LEN) as usize..end as usize];
        let w = |i: usize| le_word(&footer[i * 8..i * 8 + 8]);
        let widths = w(6);
        let (offset_width, vertex_width) = (widths & 0xffff_ffff, widths >> 32);
        let section = IdSection {
            vertex_count: w(0),
            key: (w(1), w(2)),
            blocks_pos: pos,
            blocks_len: w(3),
            block_offsets_pos: 0,
            offset_width,
            entries_pos: 0,
            entry_count: w(4),
            vertex_width,
            buckets_pos: 0,
            bucket_count: w(5),
        };
        if section.vertex_count != vertex_count {
            return Err(format!(
                "id section of {} vertices in a snapshot of {vertex_count}",
                section.vertex_count
            ));
        }
        if ![4, 8].contains(&offset_width) || ![4, 8].contains(&vertex_width) {
            return Err(format!(
                "id section widths {offset_width} and {vertex_width}"
            ));
        }
        if !section.bucket_count.is_power_of_two() || section.entry_count > vertex_count {
            return Err("id section counts out of range".into());
        }
        let block_count = vertex_count.div_ceil(BLOCK_VERTICES);
        let parts = (|| {
            let block_offsets_pos = pos.checked_add(section.blocks_len)?;
            let entries_pos = block_offsets_pos.checked_add((block_count + 1) * offset_width)?;
            let buckets_pos = entries_pos
                .checked_add(section.entry_count.checked_mul(TAG as u64 + vertex_width)?)?;
            let footer_pos = buckets_pos.checked_add(
                section
                    .bucket_count
                    .checked_add(1)?
                    .checked_mul(vertex_width)?,
            )?;
            Some((block_offsets_pos, entries_pos, buckets_pos, footer_pos))
        })();
        match parts {
            Some((block_offsets_pos, entries_pos, buckets_pos, footer_pos))
                if footer_pos == end - FOOTER_LEN =>
            {
                Ok(IdSection {
                    block_offsets_pos,
                    entries_pos,
                    buckets_pos,
                    ..section
                })
            }
            _ => Err("id section parts do not add up to its length".into()),
        }
    }

    /// The external id of `v` from its block: `None` when `v` is past the section (the tables
    /// hold it), `Some(None)` when the vertex has none (it was deleted before the fold).
    pub(super) fn external_id(
        &self,
        file: &[u8],
        v: VertexId,
    ) -> Result<Option<Option<ExternalId>>, String> {
        if v.0 >= self.vertex_count {
            return Ok(None);
        }
        let block = v.0 / BLOCK_VERTICES;
        let mut entries = BlockEntries::new(self.block_body(file, block)?);
        let mut found = None;
        for _ in 0..=v.0 % BLOCK_VERTICES {
            found = Some(
                entries
                    .next_entry()
                    .map_err(|e| format!("block {block}: {e}"))?,
            );
        }
        Ok(found)
    }

    /// Hands every id of the section to `each` in vertex order (a block decoded once for its
    /// 32 vertices, not once per vertex); returns the vertices the section covers.
    pub(super) fn for_each<E>(
        &self,
        file: &[u8],
        corrupt: impl Fn(String) -> E,
        mut each: impl FnMut(VertexId, ExternalId) -> Result<(), E>,
    ) -> Result<u64, E> {
        for block in 0..self.vertex_count.div_ceil(BLOCK_VERTICES) {
            let mut entries = BlockEntries::new(self.block_body(file, block).map_err(&corrupt)?);
            let first = block * BLOCK_VERTICES;
            for v in first..(first + BLOCK_VERTICES).min(self.vertex_count) {
                let ext = entries
                    .next_entry()
                    .map_err(|e| corrupt(format!("block {block}: {e}")))?;
                if let Some(ext) = ext {
                    each(VertexId(v), ext)?;
                }
            }
        }
        Ok(self.vertex_count)
    }

    /// The entries of block `block`, once its checksum is verified.
    fn block_body<'f>(&self, file: &'f [u8], block: u64) -> Result<&'f [u8], String> {
        let at = |i: u64| {
            let from = (self.block_offsets_pos + i * self.offset_width) as usize;
            le_word(&file[from..from + self.offset_width as usize])
        };
        let (start, end) = (at(block), at(block + 1));
        if start > end || end > self.blocks_len || end - start < CHECKSUM as u64 {
            return Err(format!(
                "block {block} at {start}..{end} of {}",
                self.blocks_len
            ));
        }
        let bytes = &file[(self.blocks_pos + start) as usize..(self.blocks_pos + end) as usize];
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
        if RecordSum::Xxh3.sum(block_seed(block), &[body]) != le_word(sum) as u32 {
            return Err(format!("block {block} does not match its checksum"));
        }
        Ok(body)
    }

    /// The entry number where hash-index bucket `bucket` starts (`bucket_count` gives the
    /// end of the last).
    fn bucket_start(&self, file: &[u8], bucket: u64) -> u64 {
        let from = (self.buckets_pos + bucket * self.vertex_width) as usize;
        le_word(&file[from..from + self.vertex_width as usize])
    }

    /// Verifies the hash index's bucket starts, for `check`: they run from 0 up to the entry
    /// count without going back. `check` also looks every id up, which finds any other damage
    /// of the index (an entry moved to another bucket, a changed tag or vertex: a look-up
    /// misses); this finds what no look-up meets: the start of the bucket after an empty one
    /// lowered (the empty one runs backwards, the next widens), or an empty last bucket's end
    /// raised past the entries.
    pub(super) fn check_index(&self, file: &[u8]) -> Result<(), String> {
        let (start, end) = (
            self.bucket_start(file, 0),
            self.bucket_start(file, self.bucket_count),
        );
        if start != 0 || end != self.entry_count {
            return Err(format!(
                "hash index buckets span entries {start}..{end} of {}",
                self.entry_count
            ));
        }
        // Each start read once, as the end of the bucket before and the start of its own.
        let mut first = start;
        for bucket in 0..self.bucket_count {
            let last = self.bucket_start(file, bucket + 1);
            if first > last {
                return Err(format!("bucket {bucket} at entries {first}..{last}"));
            }
            first = last;
        }
        Ok(())
    }

    /// The vertex whose id is `ext`, if the index holds it (verified against its block);
    /// `None` means "ask the tables".
    pub(super) fn vertex_of(
        &self,
        file: &[u8],
        ext: &ExternalId,
    ) -> Result<Option<VertexId>, String> {
        let (bucket, tag) = slot(self.key, self.bucket_count, ext);
        let (first, last) = (
            self.bucket_start(file, bucket),
            self.bucket_start(file, bucket + 1),
        );
        if first > last || last > self.entry_count {
            return Err(format!("bucket {bucket} at entries {first}..{last}"));
        }
        let entry_len = TAG as u64 + self.vertex_width;
        for i in first..last {
            let from = (self.entries_pos + i * entry_len) as usize;
            if le_word(&file[from..from + TAG]) as u16 != tag {
                continue;
            }
            let v = VertexId(le_word(&file[from + TAG..from + entry_len as usize]));
            if self.external_id(file, v)?.flatten().as_ref() == Some(ext) {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

fn block_seed(block: u64) -> u64 {
    let mut bytes = [0u8; 9];
    bytes[0] = b'x';
    bytes[1..].copy_from_slice(&block.to_le_bytes());
    fnv1a(FNV_OFFSET, &bytes)
}

/// The bucket (of `bucket_count`, a power of two) and the tag of `ext` in an index keyed with
/// `key`: the low bits and the high 16 bits of its keyed hash.
fn slot(key: (u64, u64), bucket_count: u64, ext: &ExternalId) -> (u64, u16) {
    let hash = id_hash(key, ext);
    (hash & (bucket_count - 1), (hash >> 48) as u16)
}

fn id_hash(key: (u64, u64), ext: &ExternalId) -> u64 {
    let mut h = SipHasher13::new_with_keys(key.0, key.1);
    match ext {
        ExternalId::Binary(b) => {
            h.write_u8(KIND_BINARY);
            h.write(b);
        }
        ExternalId::Text(t) => {
            h.write_u8(KIND_TEXT);
            h.write(t.as_bytes());
        }
    }
    h.finish()
}

/// Decodes a block's entries in order.
struct BlockEntries<'a> {
    bytes: &'a [u8],
    previous: [u8; 32],
}

impl<'a> BlockEntries<'a> {
    fn new(bytes: &'a [u8]) -> BlockEntries<'a> {
        BlockEntries {
            bytes,
            previous: [0; 32],
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.bytes.len() {
            return Err("an entry runs past its block");
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn next_entry(&mut self) -> Result<Option<ExternalId>, &'static str> {
        let head = self.take(1)?[0];
        match head & KIND_BITS {
            KIND_NONE => Ok(None),
            KIND_BINARY => {
                // One mask byte per 8-byte word flagged in the high nibble, each followed
                // by that word's changed bytes.
                for w in 0..4 {
                    if head & (0x10 << w) == 0 {
                        continue;
                    }
                    let mask = self.take(1)?[0];
                    let changed = self.take(mask.count_ones() as usize)?;
                    let mut changed = changed.iter();
                    for (i, byte) in self.previous[w * 8..w * 8 + 8].iter_mut().enumerate() {
                        if mask & (1 << i) != 0 {
                            if let Some(b) = changed.next() {
                                *byte = *b;
                            }
                        }
                    }
                }
                Ok(Some(ExternalId::Binary(self.previous)))
            }
            KIND_TEXT => {
                let (len, n) = get_varint(self.bytes).ok_or("a truncated length")?;
                self.take(n)?;
                let len = usize::try_from(len).map_err(|_| "a length out of range")?;
                let text = std::str::from_utf8(self.take(len)?).map_err(|_| "text not UTF-8")?;
                Ok(Some(ExternalId::Text(text.to_owned())))
            }
            _ => Err("an unknown entry kind"),
        }
    }
}

/// Encodes one block's entries, then its checksum.
struct BlockWriter {
    bytes: Vec<u8>,
    previous: [u8; 32],
}

impl BlockWriter {
    fn push(&mut self, ext: Option<&ExternalId>) {
        match ext {
            None => self.bytes.push(KIND_NONE),
            Some(ExternalId::Binary(b)) => {
                let head_at = self.bytes.len();
                let mut head = KIND_BINARY;
                self.bytes.push(head);
                for w in 0..4 {
                    let range = w * 8..w * 8 + 8;
                    let mask = range
                        .clone()
                        .filter(|i| b[*i] != self.previous[*i])
                        .fold(0u8, |m, i| m | (1 << (i - w * 8)));
                    if mask != 0 {
                        head |= 0x10 << w;
                        self.bytes.push(mask);
                        self.bytes
                            .extend(range.filter(|i| b[*i] != self.previous[*i]).map(|i| b[i]));
                    }
                }
                self.bytes[head_at] = head;
                self.previous = *b;
            }
            Some(ExternalId::Text(t)) => {
                self.bytes.push(KIND_TEXT);
                put_varint(&mut self.bytes, t.len() as u64);
                self.bytes.extend_from_slice(t.as_bytes());
            }
        }
    }

    /// The block's bytes with its checksum; the writer starts the next block.
    fn finish(&mut self, block: u64) -> &[u8] {
        let sum = RecordSum::Xxh3.sum(block_seed(block), &[&self.bytes]);
        self.bytes.extend_from_slice(&sum.to_le_bytes());
        self.previous = [0; 32];
        &self.bytes
    }
}

/// Writes the blocks of vertices `0..vertex_count` in vertex order, keeping each block's
/// offset.
struct BlocksWriter<'a, W: Write> {
    out: &'a mut W,
    vertex_count: u64,
    /// The next vertex to write.
    next: u64,
    block: BlockWriter,
    offsets: Vec<u64>,
    /// Bytes written.
    len: u64,
    /// Vertices with an id.
    present: u64,
}

impl<W: Write> BlocksWriter<'_, W> {
    /// Writes vertices `next..upto` without an id, then `upto` with `ext`; `upto ==
    /// vertex_count` closes the last block.
    fn fill_to(&mut self, upto: u64, ext: Option<&ExternalId>) -> std::io::Result<()> {
        while self.next <= upto && self.next < self.vertex_count {
            if self.next % BLOCK_VERTICES == 0 {
                self.offsets.push(self.len);
            }
            let this = if self.next == upto { ext } else { None };
            self.present += u64::from(this.is_some());
            self.block.push(this);
            self.next += 1;
            if self.next % BLOCK_VERTICES == 0 || self.next == self.vertex_count {
                let bytes = self.block.finish((self.next - 1) / BLOCK_VERTICES);
                self.len += bytes.len() as u64;
                self.out.write_all(bytes)?;
                self.block.bytes.clear();
            }
        }
        Ok(())
    }
}

/// The external ids of vertices `0..vertex_count`, in vertex order: those `previous` (the
/// generation being replaced) covers from its id section, which alone holds them from format 5
/// on, then the `vertex_external_ids` entries of the vertices created since.
fn source_ids(
    tables: &Tables,
    previous: Option<&AdjacencySnapshot>,
    vertex_count: u64,
    mut each: impl FnMut(VertexId, ExternalId) -> Result<(), WriteError>,
) -> Result<(), WriteError> {
    let covered = match previous {
        Some(previous) => previous.for_each_external_id(|v, ext| {
            if v.0 < vertex_count {
                each(v, ext)?;
            }
            Ok::<(), WriteError>(())
        })?,
        None => 0,
    };
    let mut opts = ReadOptions::default();
    opts.set_iterate_lower_bound(keys::id_key(covered.min(vertex_count)).to_vec());
    opts.set_iterate_upper_bound(keys::id_key(vertex_count).to_vec());
    let mut it = tables
        .db()
        .raw_iterator_cf_opt(tables.cf(Table::VertexExternalIds)?, opts);
    it.seek_to_first();
    while let (Some(key), Some(value)) = (it.key(), it.value()) {
        let v = keys::decode_id_key(key)
            .ok_or_else(|| WriteError::corruption("vertex external id key", "not 8 bytes"))?;
        each(VertexId(v), codec::decode_external_id(value)?)?;
        it.next();
    }
    it.status().map_err(ReadError::from)?;
    Ok(())
}

/// A random key for a file's hash index.
fn random_key() -> (u64, u64) {
    use std::hash::{BuildHasher, RandomState};
    let draw = |salt: u64| {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(salt);
        h.finish()
    };
    (draw(1), draw(2))
}

/// Writes the id section of vertices `0..vertex_count` ([`source_ids`]) to `out` (the caller
/// hashes and counts the bytes); returns its length.
pub(super) fn write_section<W: Write>(
    tables: &Tables,
    previous: Option<&AdjacencySnapshot>,
    vertex_count: u64,
    out: &mut W,
    path: &Path,
) -> Result<u64, WriteError> {
    write_section_in_passes(tables, previous, vertex_count, out, path, ENTRIES_PER_PASS)
}

/// [`write_section`] holding about `entries_per_pass` index entries at once (tests make it
/// small, to take several passes).
fn write_section_in_passes<W: Write>(
    tables: &Tables,
    previous: Option<&AdjacencySnapshot>,
    vertex_count: u64,
    out: &mut W,
    path: &Path,
    entries_per_pass: u64,
) -> Result<u64, WriteError> {
    let io = |source: std::io::Error| WriteError::File {
        path: path.to_path_buf(),
        source,
    };
    // Blocks, in one pass over the table.
    let mut blocks = BlocksWriter {
        out: &mut *out,
        vertex_count,
        next: 0,
        block: BlockWriter {
            bytes: Vec::new(),
            previous: [0; 32],
        },
        offsets: Vec::with_capacity(vertex_count.div_ceil(BLOCK_VERTICES) as usize + 1),
        len: 0,
        present: 0,
    };
    source_ids(tables, previous, vertex_count, |v, ext| {
        blocks.fill_to(v.0, Some(&ext)).map_err(io)
    })?;
    blocks.fill_to(vertex_count, None).map_err(io)?;
    let BlocksWriter {
        offsets: mut block_offsets,
        len: blocks_len,
        present,
        ..
    } = blocks;
    block_offsets.push(blocks_len);
    // The block offsets, 4 bytes each while the blocks fit 4 GiB.
    let offset_width: u64 = if blocks_len <= u64::from(u32::MAX) {
        4
    } else {
        8
    };
    let vertex_width: u64 = if vertex_count <= u64::from(u32::MAX) {
        4
    } else {
        8
    };
    let mut tail = Vec::with_capacity(block_offsets.len() * offset_width as usize);
    for o in &block_offsets {
        tail.extend_from_slice(&o.to_le_bytes()[..offset_width as usize]);
    }
    let mut total = blocks_len;
    out.write_all(&tail).map_err(io)?;
    total += tail.len() as u64;
    drop(block_offsets);
    // The hash index, a range of buckets per pass (one pass below some 4M ids).
    let key = random_key();
    let bucket_count = (present / IDS_PER_BUCKET).max(1).next_power_of_two();
    let passes = present
        .div_ceil(entries_per_pass)
        .max(1)
        .next_power_of_two()
        .min(bucket_count);
    let per_pass = bucket_count / passes;
    let mut bucket_starts = Vec::with_capacity(bucket_count as usize + 1);
    let mut entry_count = 0u64;
    for pass in 0..passes {
        let range = pass * per_pass..(pass + 1) * per_pass;
        let mut entries: Vec<(u64, u16, u64)> = Vec::new();
        source_ids(tables, previous, vertex_count, |v, ext| {
            let (bucket, tag) = slot(key, bucket_count, &ext);
            if range.contains(&bucket) {
                entries.push((bucket, tag, v.0));
            }
            Ok(())
        })?;
        entries.sort_unstable();
        let mut bytes = Vec::with_capacity(entries.len() * (TAG + vertex_width as usize));
        let mut i = 0;
        for bucket in range {
            bucket_starts.push(entry_count + i as u64);
            while i < entries.len() && entries[i].0 == bucket {
                bytes.extend_from_slice(&entries[i].1.to_le_bytes());
                bytes.extend_from_slice(&entries[i].2.to_le_bytes()[..vertex_width as usize]);
                i += 1;
            }
        }
        entry_count += entries.len() as u64;
        out.write_all(&bytes).map_err(io)?;
        total += bytes.len() as u64;
    }
    // Where each bucket starts, then the footer.
    bucket_starts.push(entry_count);
    let mut bytes = Vec::with_capacity(bucket_starts.len() * vertex_width as usize);
    for n in &bucket_starts {
        bytes.extend_from_slice(&n.to_le_bytes()[..vertex_width as usize]);
    }
    let footer = [
        vertex_count,
        key.0,
        key.1,
        blocks_len,
        entry_count,
        bucket_count,
        offset_width | (vertex_width << 32),
        0,
    ];
    for w in footer {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    out.write_all(&bytes).map_err(io)?;
    total += bytes.len() as u64;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The hash key of the sections these tests lay out.
    const TEST_KEY: (u64, u64) = (3, 4);

    /// A section's bytes as the writer lays them out, from ids given directly, with an index
    /// of one bucket.
    fn section_of(ids: &[Option<ExternalId>]) -> Vec<u8> {
        section_with_buckets(ids, 1)
    }

    /// A section's bytes as the writer lays them out, with an index of `bucket_count` buckets.
    fn section_with_buckets(ids: &[Option<ExternalId>], bucket_count: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut block = BlockWriter {
            bytes: Vec::new(),
            previous: [0; 32],
        };
        let mut offsets = vec![];
        for (b, chunk) in ids.chunks(BLOCK_VERTICES as usize).enumerate() {
            offsets.push(out.len() as u64);
            for ext in chunk {
                block.push(ext.as_ref());
            }
            out.extend_from_slice(block.finish(b as u64));
            block.bytes.clear();
        }
        let blocks_len = out.len() as u64;
        offsets.push(blocks_len);
        for o in offsets {
            out.extend_from_slice(&(o as u32).to_le_bytes());
        }
        // The entries grouped by bucket, in vertex order within one, then where each starts.
        let mut entries: Vec<(u64, u16, u32)> = ids
            .iter()
            .enumerate()
            .filter_map(|(v, ext)| {
                let (bucket, tag) = slot(TEST_KEY, bucket_count, ext.as_ref()?);
                Some((bucket, tag, v as u32))
            })
            .collect();
        entries.sort_by_key(|&(bucket, _, v)| (bucket, v));
        for &(_, tag, v) in &entries {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        for bucket in 0..=bucket_count {
            let start = entries.iter().filter(|e| e.0 < bucket).count() as u32;
            out.extend_from_slice(&start.to_le_bytes());
        }
        let footer = [
            ids.len() as u64,
            TEST_KEY.0,
            TEST_KEY.1,
            blocks_len,
            entries.len() as u64,
            bucket_count,
            4 | (4 << 32),
            0,
        ];
        for w in footer {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// The index built in many passes (a range of buckets each, as for an archive of more
    /// than 4M ids) finds every vertex of the table, as one built in one pass does.
    #[test]
    fn an_index_built_in_many_passes_finds_every_id() {
        use crate::model::{EdgeInput, EndpointInput, Placement, ProvRelation, RecordBatch};
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let endpoint = |v: usize| EndpointInput {
            ext_id: if v % 5 == 0 {
                ExternalId::Text(format!("t{v}"))
            } else {
                let mut b = [7u8; 32];
                b[8..16].copy_from_slice(&(v as u64 * 977).to_le_bytes());
                ExternalId::Binary(b)
            },
            type_hint: None,
        };
        let batch = RecordBatch {
            edges: (0..700)
                .map(|i| EdgeInput {
                    ext_id: ExternalId::Text(format!("e{i}")),
                    type_name: "read".into(),
                    relation: ProvRelation::Used,
                    src: endpoint(i),
                    dst: endpoint((i * 13 + 5) % 701),
                    placement: Placement::default(),
                    attrs: vec![],
                })
                .collect(),
            ..Default::default()
        };
        store.write(&batch).unwrap();
        let tables = &store.tables;
        let vertex_count = tables.read_counters().unwrap().next_vertex;
        for per_pass in [1, 7, 100, ENTRIES_PER_PASS] {
            let mut file = Vec::new();
            let len = write_section_in_passes(
                tables,
                None,
                vertex_count,
                &mut file,
                dir.path(),
                per_pass,
            )
            .unwrap();
            assert_eq!(len, file.len() as u64);
            let section = IdSection::decode(&file, 0, len, vertex_count).unwrap();
            let mut found = 0;
            for v in 0..vertex_count {
                let ext = store
                    .read_table_external_ids(&[VertexId(v)])
                    .unwrap()
                    .remove(0);
                let ext = ext.expect("every vertex has an id");
                assert_eq!(
                    section.external_id(&file, VertexId(v)).unwrap(),
                    Some(Some(ext.clone()))
                );
                assert_eq!(
                    section.vertex_of(&file, &ext).unwrap(),
                    Some(VertexId(v)),
                    "{per_pass}"
                );
                found += 1;
            }
            assert_eq!(found, 701);
            assert_eq!(
                section
                    .vertex_of(&file, &ExternalId::Text("t3".into()))
                    .unwrap(),
                None
            );
        }
        store.close().unwrap();
    }

    /// A bucket start lowered past an empty bucket widens the next bucket only, and an empty
    /// last bucket's end raised past the entries is read by no look-up: every id still finds
    /// its vertex, and the index check must find the damage (the archive's id-section damage
    /// test met the first once in some thousands of cases).
    #[test]
    fn the_index_check_finds_damage_no_look_up_meets() {
        // Ids in buckets 0 and 2 of 4, none in bucket 1.
        let in_bucket = |ext: &ExternalId| slot(TEST_KEY, 4, ext).0;
        let candidates = (0..).map(|i| ExternalId::Text(format!("t{i}")));
        let mut ids: Vec<Option<ExternalId>> = Vec::new();
        let mut placed = [0; 4];
        for ext in candidates {
            let bucket = in_bucket(&ext) as usize;
            if (bucket == 0 || bucket == 2) && placed[bucket] < 3 {
                placed[bucket] += 1;
                ids.push(Some(ext));
            }
            if placed[0] == 3 && placed[2] == 3 {
                break;
            }
        }
        let file = section_with_buckets(&ids, 4);
        let section = IdSection::decode(&file, 0, file.len() as u64, ids.len() as u64).unwrap();
        assert_eq!(section.check_index(&file), Ok(()));
        // Bucket start `number` changed from `was` to `now`: every look-up still answers;
        // returns what the index check says.
        let damaged = |number: u64, was: u32, now: u32| {
            let mut file = file.clone();
            let at = (section.buckets_pos + number * section.vertex_width) as usize;
            assert_eq!(le_word(&file[at..at + 4]), u64::from(was));
            file[at..at + 4].copy_from_slice(&now.to_le_bytes());
            for (v, ext) in ids.iter().enumerate() {
                let ext = ext.as_ref().unwrap();
                assert_eq!(section.vertex_of(&file, ext), Ok(Some(VertexId(v as u64))));
            }
            section.check_index(&file).unwrap_err()
        };
        // Buckets 1 and 2 start at entry 3; bucket 2 now at entry 2 (bucket 1 at 3..2).
        let found = damaged(2, 3, 2);
        assert!(found.contains("bucket 1 at entries 3..2"), "{found}");
        // Bucket 3 (empty, the last) ending past the 6 entries: no look-up goes there either.
        let found = damaged(4, 6, 7);
        assert!(found.contains("span entries 0..7 of 6"), "{found}");
    }

    fn ext_strategy() -> impl Strategy<Value = Option<ExternalId>> {
        prop_oneof![
            Just(None),
            prop::array::uniform32(0u8..3).prop_map(|b| Some(ExternalId::Binary(b))),
            "[a-z0-9]{0,12}".prop_map(|t| Some(ExternalId::Text(t))),
        ]
    }

    proptest! {
        /// Every id reads back as written, each finds its vertex (the first of equal ones).
        #[test]
        fn ids_round_trip(ids in prop::collection::vec(ext_strategy(), 0..100)) {
            let file = section_of(&ids);
            let section = IdSection::decode(&file, 0, file.len() as u64, ids.len() as u64).unwrap();
            for (v, ext) in ids.iter().enumerate() {
                prop_assert_eq!(section.external_id(&file, VertexId(v as u64)).unwrap(), Some(ext.clone()));
                if let Some(ext) = ext {
                    let first = ids.iter().position(|e| e.as_ref() == Some(ext)).unwrap();
                    prop_assert_eq!(section.vertex_of(&file, ext).unwrap(), Some(VertexId(first as u64)));
                }
            }
            prop_assert_eq!(section.external_id(&file, VertexId(ids.len() as u64)).unwrap(), None);
            // In order, every present id once (what a fold carries into the next generation).
            let mut listed = Vec::new();
            let covered = section
                .for_each(&file, |e| e, |v, ext| {
                    listed.push((v.0 as usize, ext));
                    Ok(())
                })
                .unwrap();
            let expected: Vec<(usize, ExternalId)> = ids
                .iter()
                .enumerate()
                .filter_map(|(v, ext)| Some((v, ext.clone()?)))
                .collect();
            prop_assert_eq!(covered, ids.len() as u64);
            prop_assert_eq!(listed, expected);
        }

        /// A footer whose counts would overflow the section's arithmetic is refused.
        #[test]
        fn counts_past_u64_are_refused(
            ids in prop::collection::vec(ext_strategy(), 1..40),
            bucket_shift in 58u32..64,
            entries in any::<bool>(),
        ) {
            let mut file = section_of(&ids);
            let footer = file.len() - FOOTER_LEN as usize;
            // Footer word 5 is the bucket count, word 4 the entry count.
            let word = if entries { 4 } else { 5 };
            let value = if entries { u64::MAX / 3 } else { 1u64 << bucket_shift };
            file[footer + word * 8..footer + word * 8 + 8].copy_from_slice(&value.to_le_bytes());
            prop_assert!(IdSection::decode(&file, 0, file.len() as u64, ids.len() as u64).is_err());
        }

        /// Any byte of the hash index (entries and bucket starts) changed: the index check
        /// finds it, or an id's look-up no longer finds its vertex (which `check` finds).
        #[test]
        fn a_changed_index_byte_is_found(
            raw in prop::collection::vec(ext_strategy(), 1..40),
            bucket_shift in 0u32..4,
            at in any::<prop::sample::Index>(),
            flip in 1..=255u8,
        ) {
            // Distinct ids, as an archive's are.
            let mut seen = std::collections::HashSet::new();
            let ids: Vec<Option<ExternalId>> = raw
                .into_iter()
                .map(|ext| ext.filter(|e| seen.insert(e.clone())))
                .collect();
            let mut file = section_with_buckets(&ids, 1 << bucket_shift);
            let section = IdSection::decode(&file, 0, file.len() as u64, ids.len() as u64).unwrap();
            prop_assert_eq!(section.check_index(&file), Ok(()));
            let index = section.entries_pos as usize..file.len() - FOOTER_LEN as usize;
            let byte = index.start + at.index(index.len());
            file[byte] ^= flip;
            let looked_up = ids.iter().enumerate().all(|(v, ext)| match ext {
                Some(ext) => section.vertex_of(&file, ext) == Ok(Some(VertexId(v as u64))),
                None => true,
            });
            prop_assert!(section.check_index(&file).is_err() || !looked_up);
        }

        /// Any bytes: decoding a section and reading it never panics.
        #[test]
        fn any_bytes_never_panic(
            mut file in prop::collection::vec(any::<u8>(), 0..400),
            ids in prop::collection::vec(ext_strategy(), 1..40),
            at in any::<prop::sample::Index>(),
            flip in any::<u8>(),
            raw in any::<bool>(),
        ) {
            if !raw {
                file = section_of(&ids);
                let i = at.index(file.len());
                file[i] ^= flip;
            }
            if let Ok(section) = IdSection::decode(&file, 0, file.len() as u64, ids.len() as u64) {
                for v in 0..ids.len() as u64 + 1 {
                    let _ = section.external_id(&file, VertexId(v));
                }
                for ext in ids.iter().flatten() {
                    let _ = section.vertex_of(&file, ext);
                }
                let _ = section.for_each(&file, |e| e, |_, _| Ok(()));
                let _ = section.check_index(&file);
            }
        }
    }
}
