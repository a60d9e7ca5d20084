//! Offline import of CamFlow files: W3C logs (one document per line), SPADE JSON lines or a
//! legacy SPADE array, and files of raw MQTT payloads (base64 of zlib, one per line). The kind
//! of each line is detected from its text; lines that are not JSON nor base64 (the capture
//! service's own log lines) are skipped and counted.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use provdb_storage::{RecordBatch, WriteSummary};

use crate::decode::{self, classify_line, DecodeError, TextKind};
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
}

impl<'a> Importer<'a> {
    pub(crate) fn new(db: &'a Database, progress: &'a mut dyn FnMut(ImportProgress)) -> Self {
        Importer {
            db,
            pending: RecordBatch::default(),
            report: ImportReport::default(),
            progress,
            bytes_total: 0,
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
        for p in paths {
            self.import_file(p)?;
            self.report.files += 1;
        }
        self.flush()?;
        self.db.store().flush()?;
        Ok(self.report)
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() && self.pending.skipped_lines == 0 && self.pending.rejected_documents == 0 {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        self.report.stored += self.db.store().write(&batch)?;
        (self.progress)(ImportProgress {
            bytes_done: self.report.bytes,
            bytes_total: self.bytes_total,
            records: self.report.records,
        });
        Ok(())
    }

    fn accept(&mut self, result: std::result::Result<RecordBatch, DecodeError>, file: &Path, line: usize) -> Result<()> {
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
        // A legacy SPADE array spans lines: the whole file is one document.
        let starts_with_array = {
            let buf = reader.fill_buf().map_err(io_err)?;
            buf.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
        };
        if starts_with_array {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).map_err(io_err)?;
            self.report.bytes += bytes.len() as u64;
            self.report.lines += bytes.iter().filter(|b| **b == b'\n').count() as u64;
            let result = decode::decode_text(bytes);
            return self.accept(result, path, 1);
        }
        let max_inflated = self.db.options().max_inflated;
        let mut line = Vec::with_capacity(64 << 10);
        let mut number = 0usize;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(io_err)?;
            if n == 0 {
                break;
            }
            number += 1;
            self.report.lines += 1;
            self.report.bytes += n as u64;
            let text = String::from_utf8_lossy(&line);
            match classify_line(&text) {
                TextKind::Json => {
                    let mut bytes = text.trim().as_bytes().to_vec();
                    let result = decode::decode_json_object(&mut bytes, None);
                    self.accept(result, path, number)?;
                }
                TextKind::Payload => {
                    let result = decode::decode_payload(text.trim().as_bytes(), max_inflated);
                    self.accept(result, path, number)?;
                }
                TextKind::Other if text.trim().is_empty() => {}
                TextKind::Other => {
                    self.report.skipped_lines += 1;
                    self.pending.skipped_lines += 1;
                }
            }
        }
        Ok(())
    }
}
