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

use provdb_storage::{CompactionPace, RecordBatch, WriteSummary};

use crate::decode::{self, classify_bytes, decode_guarded, DecodeError, TextKind};
use crate::pipeline::{self, BatchWrite, Batcher, Feeder, PipelineSettings};
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
    /// New alerts raised by the detection rules.
    pub alerts: u64,
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

/// Runs an import through the ingest pipeline ([`crate::pipeline`]): this thread reads the
/// files into chunks of lines (or whole documents), the decoders decode them, and the writer
/// takes them back in file order (so ids stay deterministic) while the committer writes the
/// previous batch.
pub(crate) fn import_files(
    db: &Database,
    paths: &[PathBuf],
    progress: &mut dyn FnMut(ImportProgress),
) -> Result<ImportReport> {
    let paths = &files_to_import(paths)?;
    let mut bytes_total = 0;
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| Error::Io {
            path: p.clone(),
            source,
        })?;
        bytes_total += meta.len();
    }
    let options = db.options();
    let (max_inflated, max_document) = (options.max_inflated, options.max_document_bytes);
    let decoders = (0..options.decoders.max(1))
        .map(|_| move |chunk: Chunk| decode_chunk(chunk, max_inflated, max_document))
        .collect();
    let mut batcher = ImportBatcher {
        paths,
        batch_records: options.batch_records,
        pending: RecordBatch::default(),
        emptied: Vec::new(),
        report: ImportReport::default(),
        progress,
        bytes_total,
    };
    let mut stored = WriteSummary::default();
    let settings = PipelineSettings {
        queue_capacity: options.decoders.max(1) * 2,
        max_latency: None,
        durability: options.import_durability,
    };
    let mut alerts = 0u64;
    // Level-0 files wait for a merge until 32 of them (`CompactionPace::Bulk`): the import
    // reads little, and merging every 4 rewrote the growing bottom level again and again. A
    // store opened at that pace (`provdb import`'s) keeps it: it closes when the import ends.
    let paced_here = db.store().compaction_pace() != CompactionPace::Bulk;
    if paced_here {
        db.store().set_compaction_pace(CompactionPace::Bulk)?;
    }
    let files = pipeline::run(
        db.store(),
        &settings,
        db.detector(),
        decoders,
        &mut batcher,
        |(), summary, raised: Vec<crate::detect::Alert>| {
            stored += summary;
            alerts += raised.iter().filter(|a| a.count == 1).count() as u64;
        },
        |feeder| {
            for (file, path) in paths.iter().enumerate() {
                read_file(file, path, max_document, &feeder)?;
            }
            Ok(paths.len())
        },
    );
    // What was committed is made durable even when the import fails: its batches skip the
    // WAL (`import_durability`), and a later logged write must never outlive them in a crash.
    let flushed = db.store().flush();
    // Back to the live pace even when the import failed: the files it left are merged in the
    // background from now on (or by `compact`), and the reads that follow probe fewer files.
    let paced = match paced_here {
        true => db.store().set_compaction_pace(CompactionPace::Live),
        false => Ok(()),
    };
    let files = files?;
    flushed?;
    paced?;
    let mut report = batcher.report;
    report.files = files;
    report.stored = stored;
    report.alerts = alerts;
    Ok(report)
}

/// The files that importing `paths` reads, in order: a file is itself; a folder (as
/// `provdb simulate --out` or a collection of camflowd logs leaves one) is its files, sorted by
/// name, not recursively, without hidden files and without `simulate`'s ground-truth files
/// (`truth*.json`), which are not CamFlow output.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// for name in ["b.log", "a.log", "truth-webshell.json", ".hidden"] {
///     std::fs::write(dir.path().join(name), "").unwrap();
/// }
/// let files = provdb::import::files_to_import(&[dir.path().to_owned()]).unwrap();
/// assert_eq!(files, [dir.path().join("a.log"), dir.path().join("b.log")]);
/// ```
pub fn files_to_import(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let io_err = |source| Error::Io {
            path: path.clone(),
            source,
        };
        if !std::fs::metadata(path).map_err(io_err)?.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut inside = Vec::new();
        for entry in std::fs::read_dir(path).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ground_truth = name.starts_with("truth") && name.ends_with(".json");
            if name.starts_with('.') || ground_truth || !entry.path().is_file() {
                continue;
            }
            inside.push(entry.path());
        }
        inside.sort();
        files.extend(inside);
    }
    Ok(files)
}

/// Reads one file into the pipeline: one chunk for a document spread over many lines (as
/// [`decode::sniff`] judges it), chunks of about [`CHUNK_BYTES`] of lines otherwise.
fn read_file(file: usize, path: &Path, max_document: usize, feeder: &Feeder<Chunk>) -> Result<()> {
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    // The pipeline stopped: the stage that failed reports why.
    let stopped = |_| Error::StageFailed("decoder");
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).map_err(io_err)?);
    if decode::sniff(reader.fill_buf().map_err(io_err)?).spans_lines {
        // Read one byte past the cap, so an over-long document is known without reading (or
        // holding) the rest of it.
        let mut bytes = Vec::new();
        (&mut reader)
            .take(max_document as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        let lines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
        let chunk = if bytes.len() > max_document {
            let total = std::fs::metadata(path).map_err(io_err)?.len();
            let total = total.max(bytes.len() as u64);
            Chunk {
                file,
                lines,
                bytes: total,
                piece: Piece::DocumentTooLong { bytes: total },
            }
        } else {
            Chunk {
                file,
                lines,
                bytes: bytes.len() as u64,
                piece: Piece::Document(bytes),
            }
        };
        return feeder.send(chunk).map_err(stopped);
    }
    let mut number = 0usize;
    loop {
        let first_line = number + 1;
        let mut lines = Vec::new();
        let mut bytes = 0u64;
        while bytes < CHUNK_BYTES as u64 {
            let Some(line) = read_line_bounded(&mut reader, max_document).map_err(io_err)? else {
                break;
            };
            number += 1;
            bytes += match &line {
                BoundedLine::Text(t) => t.len() as u64,
                BoundedLine::TooLong { bytes } => *bytes,
            };
            lines.push(line);
        }
        if lines.is_empty() {
            return Ok(());
        }
        let chunk = Chunk {
            file,
            lines: lines.len() as u64,
            bytes,
            piece: Piece::Lines { first_line, lines },
        };
        feeder.send(chunk).map_err(stopped)?;
    }
}

/// The import's writer-stage policy: counts what was read, keeps rejections, and closes a
/// batch at [`crate::DatabaseOptions::batch_records`] records.
struct ImportBatcher<'p> {
    paths: &'p [PathBuf],
    batch_records: usize,
    pending: RecordBatch,
    /// Emptied vectors of committed batches, room for the next ones.
    emptied: Vec<RecordBatch>,
    report: ImportReport,
    progress: &'p mut dyn FnMut(ImportProgress),
    bytes_total: u64,
}

impl Batcher<DecodedChunk> for ImportBatcher<'_> {
    type Token = ();

    fn take(&mut self, d: DecodedChunk) -> Result<bool> {
        self.report.lines += d.lines;
        self.report.bytes += d.bytes;
        self.report.skipped_lines += d.skipped;
        self.pending.skipped_lines += d.skipped;
        for (line, result) in d.documents {
            match result {
                Ok(batch) => {
                    self.report.documents += 1;
                    self.report.records += batch.len() as u64;
                    self.pending.append(batch);
                }
                Err(DecodeError::Empty) => {}
                Err(e) => {
                    let file = self
                        .paths
                        .get(d.file)
                        .map_or(Path::new(""), |p| p.as_path());
                    self.report.reject(file, line, e);
                    self.pending.rejected_documents += 1;
                }
            }
        }
        Ok(self.pending.len() >= self.batch_records)
    }

    fn build(&mut self) -> Result<Option<BatchWrite<()>>> {
        if self.pending.is_empty()
            && self.pending.skipped_lines == 0
            && self.pending.rejected_documents == 0
        {
            return Ok(None);
        }
        (self.progress)(ImportProgress {
            bytes_done: self.report.bytes,
            bytes_total: self.bytes_total,
            records: self.report.records,
        });
        // The next batch gets room for as many records as this one at once: filled by
        // appending documents from empty, its vectors grew by doubling, each step copying
        // every record so far into fresh memory (~7% of the writer thread's time). The room
        // of a committed batch, emptied, is used again: fresh room page-faulted in as it
        // filled (~4% of the writer thread on a 2-core VM).
        let (vertices, edges) = (self.pending.vertices.len(), self.pending.edges.len());
        let room = match self.emptied.pop() {
            Some(mut room) => {
                room.vertices.reserve(vertices);
                room.edges.reserve(edges);
                room
            }
            None => RecordBatch {
                vertices: Vec::with_capacity(vertices),
                edges: Vec::with_capacity(edges),
                ..RecordBatch::default()
            },
        };
        Ok(Some(BatchWrite {
            records: std::mem::replace(&mut self.pending, room),
            side_puts: Vec::new(),
            token: (),
        }))
    }

    fn recycle(&mut self, emptied: RecordBatch) {
        // Two batches are in flight at most (one preparing, one committing): more room than
        // that is freed.
        if self.emptied.len() < 2 {
            self.emptied.push(emptied);
        }
    }
}

/// Bytes of lines handed to a decoder at once.
const CHUNK_BYTES: usize = 1 << 20;

/// What the reader hands a decoder: a run of lines, or a whole multi-line document.
struct Chunk {
    /// Index of the file in the import's list.
    file: usize,
    /// Lines it covers.
    lines: u64,
    /// Bytes it covers.
    bytes: u64,
    piece: Piece,
}

enum Piece {
    Lines {
        first_line: usize,
        lines: Vec<BoundedLine>,
    },
    Document(Vec<u8>),
    DocumentTooLong {
        bytes: u64,
    },
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
    file: usize,
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

fn decode_chunk(chunk: Chunk, max_inflated: usize, max_line: usize) -> DecodedChunk {
    let mut out = DecodedChunk {
        file: chunk.file,
        lines: chunk.lines,
        bytes: chunk.bytes,
        skipped: 0,
        documents: Vec::new(),
    };
    let (first_line, lines) = match chunk.piece {
        Piece::Lines { first_line, lines } => (first_line, lines),
        Piece::Document(bytes) => {
            out.documents
                .push((1, decode_guarded(|| decode::decode_text(bytes))));
            return out;
        }
        Piece::DocumentTooLong { bytes } => {
            let error = DecodeError::DocumentTooLong {
                limit: max_line,
                bytes,
            };
            out.documents.push((1, Err(error)));
            return out;
        }
    };
    for (i, line) in lines.into_iter().enumerate() {
        let number = first_line + i;
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
