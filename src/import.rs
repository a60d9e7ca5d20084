//! Offline import of CamFlow files: W3C logs (one document per line), SPADE JSON lines, one
//! document over many lines (a pretty-printed W3C document, a legacy SPADE array), and files of
//! raw MQTT payloads (base64 of zlib, one per line). How a file is laid out is judged from its
//! content ([`decode::sniff`]), the kind of each line from its text; lines that are not JSON
//! nor base64 (the capture service's own log lines) are skipped and counted. Lines and
//! documents over [`crate::DatabaseOptions::max_document_bytes`] are rejected without being
//! held in memory, and a decoder panic rejects only its document.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use provdb_storage::{PreparedWrite, RecordBatch, StorageError, WriteSummary};

use crate::decode::{self, classify_bytes, decode_guarded, DecodeError, TextKind};
use crate::{Database, Error, Result};

/// How many rejections an [`ImportReport`] keeps in full (all are counted).
pub const MAX_REPORTED_REJECTIONS: usize = 100;

/// A document that could not be decoded: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// File it came from.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// Why.
    pub error: DecodeError,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.error)
    }
}

/// Progress of an import, reported after each line batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportProgress {
    /// Bytes read so far over all files.
    pub bytes_done: u64,
    /// Total bytes of all files.
    pub bytes_total: u64,
    /// Records decoded so far.
    pub records: u64,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Files read.
    pub files: usize,
    /// Lines read (blank lines included).
    pub lines: u64,
    /// Documents (W3C documents, SPADE records, payloads) decoded.
    pub documents: u64,
    /// Records decoded (vertices and edges, duplicates included).
    pub records: u64,
    /// What the store did with them.
    pub stored: WriteSummary,
    /// Lines that were neither JSON nor a payload.
    pub skipped_lines: u64,
    /// Documents rejected.
    pub rejected: u64,
    /// The first [`MAX_REPORTED_REJECTIONS`] rejections.
    pub rejections: Vec<Rejection>,
    /// Bytes read.
    pub bytes: u64,
}

impl ImportReport {
    fn reject(&mut self, file: &Path, line: usize, error: DecodeError) {
        self.rejected += 1;
        if self.rejections.len() < MAX_REPORTED_REJECTIONS {
            self.rejections.push(Rejection {
                file: file.to_path_buf(),
                line,
                error,
            });
        }
    }
}

pub(crate) struct Importer<'a> {
    db: &'a Database,
    pending: RecordBatch,
    report: ImportReport,
    progress: &'a mut dyn FnMut(ImportProgress),
    bytes_total: u64,
    /// Prepared writes on their way to the committer thread.
    commits: Option<crossbeam_channel::Sender<PreparedWrite<'a>>>,
}

impl<'a> Importer<'a> {
    pub(crate) fn new(db: &'a Database, progress: &'a mut dyn FnMut(ImportProgress)) -> Self {
        Importer {
            db,
            pending: RecordBatch::default(),
            report: ImportReport::default(),
            progress,
            bytes_total: 0,
            commits: None,
        }
    }

    pub(crate) fn run(mut self, paths: &[PathBuf]) -> Result<ImportReport> {
        for p in paths {
            let meta = std::fs::metadata(p).map_err(|source| Error::Io {
                path: p.clone(),
                source,
            })?;
            self.bytes_total += meta.len();
        }
        // This thread prepares each batch (resolves ids, encodes) while a committer thread
        // writes the previous one into RocksDB: two cores instead of one on the write path.
        let db: &'a Database = self.db;
        let store = db.store();
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = crossbeam_channel::bounded::<PreparedWrite<'_>>(1);
            let committer = scope.spawn(move || -> Result<()> {
                for prepared in rx {
                    store.commit_prepared(prepared)?;
                }
                Ok(())
            });
            self.commits = Some(tx);
            let imported = self.import_all(paths);
            // Closing the channel ends the committer once it has written everything sent.
            self.commits = None;
            let committed = committer
                .join()
                .unwrap_or(Err(Error::Storage(StorageError::PipelineAborted)));
            // The committer's own error explains why sending to it failed.
            committed.and(imported)
        })?;
        store.flush()?;
        Ok(self.report)
    }

    fn import_all(&mut self, paths: &[PathBuf]) -> Result<()> {
        for p in paths {
            self.import_file(p)?;
            self.report.files += 1;
        }
        self.flush()
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty()
            && self.pending.skipped_lines == 0
            && self.pending.rejected_documents == 0
        {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        let db: &'a Database = self.db;
        let prepared = db
            .store()
            .prepare_write(&batch, &[], db.options().durability)?;
        self.report.stored += prepared.summary();
        match &self.commits {
            Some(tx) => tx
                .send(prepared)
                .map_err(|_| Error::Storage(StorageError::PipelineAborted))?,
            None => {
                self.db.store().commit_prepared(prepared)?;
            }
        }
        (self.progress)(ImportProgress {
            bytes_done: self.report.bytes,
            bytes_total: self.bytes_total,
            records: self.report.records,
        });
        Ok(())
    }

    fn accept(
        &mut self,
        result: std::result::Result<RecordBatch, DecodeError>,
        file: &Path,
        line: usize,
    ) -> Result<()> {
        match result {
            Ok(batch) => {
                self.report.documents += 1;
                self.report.records += batch.len() as u64;
                self.pending.append(batch);
                if self.pending.len() >= self.db.options().batch_records {
                    self.flush()?;
                }
            }
            Err(DecodeError::Empty) => {}
            Err(e) => {
                self.report.reject(file, line, e);
                self.pending.rejected_documents += 1;
            }
        }
        Ok(())
    }

    fn import_file(&mut self, path: &Path) -> Result<()> {
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut reader = BufReader::with_capacity(1 << 20, File::open(path).map_err(io_err)?);
        let max_document = self.db.options().max_document_bytes;
        let whole_document = decode::sniff(reader.fill_buf().map_err(io_err)?).spans_lines;
        if whole_document {
            // Read one byte past the cap, so an over-long document is known without reading
            // (or holding) the rest of it.
            let mut bytes = Vec::new();
            (&mut reader)
                .take(max_document as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(io_err)?;
            self.report.lines += bytes.iter().filter(|b| **b == b'\n').count() as u64;
            let result = if bytes.len() > max_document {
                let total = std::fs::metadata(path).map_err(io_err)?.len();
                self.report.bytes += total;
                Err(DecodeError::DocumentTooLong {
                    limit: max_document,
                    bytes: total.max(bytes.len() as u64),
                })
            } else {
                self.report.bytes += bytes.len() as u64;
                decode_guarded(|| decode::decode_text(bytes))
            };
            return self.accept(result, path, 1);
        }
        // Pipeline: this thread reads chunks of lines, DECODERS threads decode them, and this
        // thread writes the decoded chunks back in file order (so ids stay deterministic).
        let max_inflated = self.db.options().max_inflated;
        std::thread::scope(|scope| -> Result<()> {
            let (chunk_tx, chunk_rx) = crossbeam_channel::bounded::<Chunk>(DECODERS * 2);
            let (done_tx, done_rx) = crossbeam_channel::bounded::<DecodedChunk>(DECODERS * 2);
            for _ in 0..DECODERS {
                let rx = chunk_rx.clone();
                let tx = done_tx.clone();
                scope.spawn(move || {
                    for chunk in rx {
                        let decoded = decode_chunk(chunk, max_inflated, max_document);
                        if tx.send(decoded).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(chunk_rx);
            drop(done_tx);
            let reader_thread = scope.spawn(move || read_chunks(reader, max_document, chunk_tx));
            let mut next = 0u64;
            let mut waiting = std::collections::BTreeMap::new();
            let mut failure = None;
            for decoded in done_rx {
                waiting.insert(decoded.seq, decoded);
                while let Some(d) = waiting.remove(&next) {
                    next += 1;
                    if failure.is_none() {
                        if let Err(e) = self.take(d, path) {
                            failure = Some(e);
                        }
                    }
                }
            }
            let read_result = reader_thread
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("reader thread panicked")));
            if let Some(e) = failure {
                return Err(e);
            }
            read_result.map_err(io_err)
        })
    }

    fn take(&mut self, d: DecodedChunk, path: &Path) -> Result<()> {
        self.report.lines += d.lines;
        self.report.bytes += d.bytes;
        self.report.skipped_lines += d.skipped;
        self.pending.skipped_lines += d.skipped;
        for (line, result) in d.documents {
            self.accept(result, path, line)?;
        }
        Ok(())
    }
}

/// Decoder threads of an import (the machines have two cores; the writer shares them).
const DECODERS: usize = 2;
/// Bytes of lines handed to a decoder at once.
const CHUNK_BYTES: usize = 1 << 20;

struct Chunk {
    seq: u64,
    first_line: usize,
    lines: Vec<BoundedLine>,
    bytes: u64,
}

/// One line read by [`read_line_bounded`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundedLine {
    /// The line's bytes (with its newline).
    Text(Vec<u8>),
    /// A line over the limit: skipped, only its length kept.
    TooLong {
        /// Its length in bytes.
        bytes: u64,
    },
}

struct DecodedChunk {
    seq: u64,
    lines: u64,
    bytes: u64,
    skipped: u64,
    documents: Vec<(usize, std::result::Result<RecordBatch, DecodeError>)>,
}

/// Reads one line, holding at most `limit` bytes of it (plus its newline): the rest of a
/// longer line is consumed and dropped. `None` at the end of input.
///
/// ```
/// use provdb::import::{read_line_bounded, BoundedLine};
/// let mut input = &b"short\nmuch too long\nend"[..];
/// assert_eq!(read_line_bounded(&mut input, 8)?, Some(BoundedLine::Text(b"short\n".to_vec())));
/// assert_eq!(read_line_bounded(&mut input, 8)?, Some(BoundedLine::TooLong { bytes: 14 }));
/// assert_eq!(read_line_bounded(&mut input, 8)?, Some(BoundedLine::Text(b"end".to_vec())));
/// assert_eq!(read_line_bounded(&mut input, 8)?, None);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_line_bounded(
    reader: &mut impl BufRead,
    limit: usize,
) -> std::io::Result<Option<BoundedLine>> {
    let mut text = Vec::new();
    let mut total = 0u64;
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let (take, ends_line) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !too_long {
            let content = text.len() + take - usize::from(ends_line);
            if content > limit {
                too_long = true;
                text = Vec::new();
            } else {
                text.extend_from_slice(&buf[..take]);
            }
        }
        total += take as u64;
        reader.consume(take);
        if ends_line {
            break;
        }
    }
    Ok(match (total, too_long) {
        (0, _) => None,
        (bytes, true) => Some(BoundedLine::TooLong { bytes }),
        (_, false) => Some(BoundedLine::Text(text)),
    })
}

fn read_chunks(
    mut reader: impl BufRead,
    max_line: usize,
    tx: crossbeam_channel::Sender<Chunk>,
) -> std::io::Result<()> {
    let mut seq = 0;
    let mut number = 0usize;
    loop {
        let mut chunk = Chunk {
            seq,
            first_line: number + 1,
            lines: Vec::new(),
            bytes: 0,
        };
        while chunk.bytes < CHUNK_BYTES as u64 {
            let Some(line) = read_line_bounded(&mut reader, max_line)? else {
                break;
            };
            number += 1;
            chunk.bytes += match &line {
                BoundedLine::Text(t) => t.len() as u64,
                BoundedLine::TooLong { bytes } => *bytes,
            };
            chunk.lines.push(line);
        }
        if chunk.lines.is_empty() {
            return Ok(());
        }
        seq += 1;
        if tx.send(chunk).is_err() {
            return Ok(()); // the writer stopped on an error it reports itself
        }
    }
}

fn decode_chunk(chunk: Chunk, max_inflated: usize, max_line: usize) -> DecodedChunk {
    let mut out = DecodedChunk {
        seq: chunk.seq,
        lines: chunk.lines.len() as u64,
        bytes: chunk.bytes,
        skipped: 0,
        documents: Vec::new(),
    };
    for (i, line) in chunk.lines.into_iter().enumerate() {
        let number = chunk.first_line + i;
        let line = match line {
            BoundedLine::Text(line) => line,
            BoundedLine::TooLong { bytes } => {
                let error = DecodeError::DocumentTooLong {
                    limit: max_line,
                    bytes,
                };
                out.documents.push((number, Err(error)));
                continue;
            }
        };
        match classify_bytes(&line) {
            TextKind::Json => {
                let result = decode_guarded(|| decode::decode_text(line));
                out.documents.push((number, result));
            }
            TextKind::Payload => {
                let result = decode_guarded(|| decode::decode_payload(&line, max_inflated));
                out.documents.push((number, result));
            }
            TextKind::Other if line.trim_ascii().is_empty() => {}
            TextKind::Other => out.skipped += 1,
        }
    }
    out
}
