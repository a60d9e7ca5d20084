//! Parquet export: two datasets, `vertices/` and `edges/`, hive-partitioned by machine
//! (`machine=<id>/part-0.parquet`; records without a machine under `machine=NULL/`), written
//! with the `parquet` crate's Arrow writer (snappy). DuckDB reads them with
//! `read_parquet('OUT/edges/**/*.parquet', hive_partitioning = true)`, Spark with
//! `spark.read.parquet('OUT/edges')`, and GraphFrames takes them as they are (`id`; `src`,
//! `dst`).
//!
//! Schema (the `machine` column comes from the partition folder, as hive partitioning wants):
//!
//! | dataset | column | type |
//! |---|---|---|
//! | vertices | `id` | string: external id (CamFlow identifier, base64) |
//! | vertices | `type`, `class` | string: CamFlow type, PROV class (`unknown` for a stub) |
//! | vertices | `boot`, `version` | uint32, null when unknown |
//! | vertices | `time` | int64 Unix seconds (`cf:date`), null when absent |
//! | vertices | `attributes` | string: JSON object of every other attribute, kinds kept |
//! | edges | `id`, `type`, `relation` | string: external id, CamFlow type, PROV relation |
//! | edges | `src`, `dst` | string: external ids of sender and receiver |
//! | edges | `boot` | uint32; `time` int64 Unix seconds |
//! | edges | `attributes` | string: JSON object |

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder, UInt32Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use provdb_storage::{Placement, Store};

use crate::export::{attributes_json, ExportReport};
use crate::Result;

/// Rows buffered per machine before they are handed to the Parquet writer.
const BATCH_ROWS: usize = 8192;

fn parquet_error(e: impl std::fmt::Display, path: &Path) -> crate::Error {
    crate::Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Column builders of one partition's pending rows.
struct Columns {
    strings: Vec<StringBuilder>,
    boot: UInt32Builder,
    version: Option<UInt32Builder>,
    time: Int64Builder,
    attributes: StringBuilder,
    rows: usize,
}

impl Columns {
    fn new(strings: usize, with_version: bool) -> Columns {
        Columns {
            strings: (0..strings).map(|_| StringBuilder::new()).collect(),
            boot: UInt32Builder::new(),
            version: with_version.then(UInt32Builder::new),
            time: Int64Builder::new(),
            attributes: StringBuilder::new(),
            rows: 0,
        }
    }

    fn push(&mut self, strings: &[&str], placement: &Placement, attributes: &str) {
        for (b, s) in self.strings.iter_mut().zip(strings) {
            b.append_value(s);
        }
        self.boot.append_option(placement.boot);
        if let Some(v) = &mut self.version {
            v.append_option(placement.version);
        }
        self.time.append_option(placement.time);
        self.attributes.append_value(attributes);
        self.rows += 1;
    }

    fn finish(&mut self, schema: &SchemaRef) -> std::result::Result<RecordBatch, String> {
        let mut arrays: Vec<ArrayRef> = self
            .strings
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        arrays.push(Arc::new(self.boot.finish()));
        if let Some(v) = &mut self.version {
            arrays.push(Arc::new(v.finish()));
        }
        arrays.push(Arc::new(self.time.finish()));
        arrays.push(Arc::new(self.attributes.finish()));
        self.rows = 0;
        RecordBatch::try_new(schema.clone(), arrays).map_err(|e| e.to_string())
    }
}

/// One dataset (`vertices/` or `edges/`): a writer and pending rows per machine partition.
struct Dataset {
    dir: PathBuf,
    schema: SchemaRef,
    string_columns: usize,
    with_version: bool,
    partitions: HashMap<Option<u32>, (ArrowWriter<File>, Columns)>,
}

impl Dataset {
    fn new(dir: PathBuf, string_names: &[&str], with_version: bool) -> Dataset {
        let mut fields: Vec<Field> = string_names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect();
        fields.push(Field::new("boot", DataType::UInt32, true));
        if with_version {
            fields.push(Field::new("version", DataType::UInt32, true));
        }
        fields.push(Field::new("time", DataType::Int64, true));
        fields.push(Field::new("attributes", DataType::Utf8, false));
        Dataset {
            dir,
            schema: Arc::new(Schema::new(fields)),
            string_columns: string_names.len(),
            with_version,
            partitions: HashMap::new(),
        }
    }

    fn push(
        &mut self,
        machine: Option<u32>,
        strings: &[&str],
        placement: &Placement,
        attributes: &str,
    ) -> Result<()> {
        if !self.partitions.contains_key(&machine) {
            let folder = self.dir.join(match machine {
                Some(m) => format!("machine={m}"),
                None => "machine=NULL".to_owned(),
            });
            std::fs::create_dir_all(&folder).map_err(|e| parquet_error(e, &folder))?;
            let path = folder.join("part-0.parquet");
            let file = File::create(&path).map_err(|e| parquet_error(e, &path))?;
            let props = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_max_row_group_row_count(Some(64 * 1024))
                .build();
            let writer = ArrowWriter::try_new(file, self.schema.clone(), Some(props))
                .map_err(|e| parquet_error(e, &path))?;
            self.partitions.insert(
                machine,
                (writer, Columns::new(self.string_columns, self.with_version)),
            );
        }
        let Some((writer, columns)) = self.partitions.get_mut(&machine) else {
            return Ok(());
        };
        columns.push(strings, placement, attributes);
        if columns.rows >= BATCH_ROWS {
            write_pending(writer, columns, &self.schema, &self.dir)?;
        }
        Ok(())
    }

    /// Writes pending rows, closes every file (footer) and syncs it.
    fn finish(self) -> Result<u64> {
        let mut bytes = 0;
        for (_, (mut writer, mut columns)) in self.partitions {
            if columns.rows > 0 {
                write_pending(&mut writer, &mut columns, &self.schema, &self.dir)?;
            }
            let file = writer
                .into_inner()
                .map_err(|e| parquet_error(e, &self.dir))?;
            file.sync_all().map_err(|e| parquet_error(e, &self.dir))?;
            bytes += file
                .metadata()
                .map_err(|e| parquet_error(e, &self.dir))?
                .len();
        }
        Ok(bytes)
    }
}

/// Hands a partition's pending rows to its Parquet writer.
fn write_pending(
    writer: &mut ArrowWriter<File>,
    columns: &mut Columns,
    schema: &SchemaRef,
    dir: &Path,
) -> Result<()> {
    let batch = columns.finish(schema).map_err(|e| parquet_error(e, dir))?;
    writer.write(&batch).map_err(|e| parquet_error(e, dir))
}

/// Writes every vertex and edge of `store` to `out/vertices/` and `out/edges/` (see the module
/// documentation for the schema), calling `progress` with the records written so far. Memory:
/// up to [`BATCH_ROWS`] pending rows and one row group per machine.
pub fn export_parquet(
    store: &Store,
    out: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportReport> {
    let mut report = ExportReport::default();
    let mut vertices = Dataset::new(out.join("vertices"), &["id", "type", "class"], true);
    for v in store.scan_vertices() {
        let v = v?;
        let ext = v.ext_id.to_string();
        vertices.push(
            v.placement.machine,
            &[&ext, &v.type_name, v.class.as_str()],
            &v.placement,
            &attributes_json(&v.attrs),
        )?;
        report.vertices += 1;
        if report.vertices % 10_000 == 0 {
            progress(report.vertices);
        }
    }
    report.bytes += vertices.finish()?;
    let mut edges = Dataset::new(
        out.join("edges"),
        &["id", "type", "relation", "src", "dst"],
        false,
    );
    for e in store.scan_edges() {
        let e = e?;
        let ext = e.ext_id.to_string();
        let src = crate::export::ext_of(store, e.src)?.to_string();
        let dst = crate::export::ext_of(store, e.dst)?.to_string();
        edges.push(
            e.placement.machine,
            &[&ext, &e.type_name, e.relation.as_str(), &src, &dst],
            &e.placement,
            &attributes_json(&e.attrs),
        )?;
        report.edges += 1;
        if (report.vertices + report.edges) % 10_000 == 0 {
            progress(report.vertices + report.edges);
        }
    }
    report.bytes += edges.finish()?;
    progress(report.vertices + report.edges);
    Ok(report)
}
