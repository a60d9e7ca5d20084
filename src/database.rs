//! [`Database`]: the library facade over the store, the decoder and the importer.

use std::path::{Path, PathBuf};

use provdb_storage::{
    Adjacent, CheckReport, CompactionPace, Direction, Durability, Edge, ExternalId, IdSet,
    OpenMode, PruneReport, PruneSelection, RecordBatch, Store, StoreOptions, StoreStats, Vertex,
    VertexId, WriteSummary,
};

use std::sync::Arc;

use crate::decode::{self, DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_MAX_INFLATED};
use crate::detect::{Alert, AlertFilter, Detector, RuleSet, SharedRules};
use crate::import::{ImportProgress, ImportReport};
use crate::Result;

/// Options of a [`Database`].
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// Cap on the inflated size of one payload (default 64 MiB): larger is rejected as a bomb.
    pub max_inflated: usize,
    /// Cap on one line or one multi-line document of an imported file (default 64 MiB):
    /// longer ones are rejected without being held in memory.
    pub max_document_bytes: usize,
    /// Records grouped into one atomic write during imports (default 50,000).
    pub batch_records: usize,
    /// Durability of writes (default: WAL without fsync; `close`/`flush` make it durable).
    pub durability: Durability,
    /// Durability of each batch of [`Database::import`] (default: [`Durability::Unlogged`]).
    /// An import makes everything durable before it returns; until then, a crash leaves the
    /// archive holding a consistent prefix of what was imported, which importing the same
    /// files again completes (imports skip what is stored). `Buffered` or `Sync` keep more of
    /// an interrupted import, at the WAL's cost.
    pub import_durability: Durability,
    /// Block cache bytes (default 256 MiB).
    pub block_cache_bytes: usize,
    /// Decoder threads of an import (default: the number of cores).
    pub decoders: usize,
    /// Detection rules run on every write (default: the default pack).
    pub detection: Detection,
    /// A writer's flushes and compactions write with direct I/O, past the page cache (default
    /// off; `provdb import` turns it on): for bulk loads, see
    /// [`provdb_storage::StoreOptions::direct_io_writes`].
    pub direct_io_writes: bool,
    /// The pace of a writer's compactions for this open (default
    /// [`CompactionPace::Live`]; `provdb import` opens at [`CompactionPace::Bulk`], and then
    /// [`Database::import`] leaves the pace as it is): see
    /// [`provdb_storage::StoreOptions::compaction_pace`].
    pub compaction_pace: CompactionPace,
}

/// Which detection rules a database that writes runs (readers run none).
#[derive(Debug, Clone, Default)]
pub enum Detection {
    /// The default rule pack ([`crate::detect::RuleSet::default_pack`]).
    #[default]
    DefaultPack,
    /// No detection.
    Off,
    /// These rules.
    Rules(SharedRules),
}

/// The number of cores, the default count of decoder threads.
pub(crate) fn default_decoders() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        DatabaseOptions {
            max_inflated: DEFAULT_MAX_INFLATED,
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
            batch_records: 50_000,
            durability: Durability::Buffered,
            import_durability: Durability::Unlogged,
            block_cache_bytes: 256 << 20,
            decoders: default_decoders(),
            detection: Detection::DefaultPack,
            direct_io_writes: false,
            compaction_pace: CompactionPace::Live,
        }
    }
}

/// An open provdb database.
#[derive(Debug)]
pub struct Database {
    store: Store,
    options: DatabaseOptions,
    detector: Option<Detector>,
}

impl Database {
    /// Opens or creates a database in folder `path`.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let db = provdb::Database::open(dir.path())?;
    /// assert_eq!(db.stats()?.vertices, 0);
    /// db.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Database> {
        Database::open_with(path, DatabaseOptions::default())
    }

    /// Opens or creates a database with options.
    pub fn open_with(path: impl AsRef<Path>, options: DatabaseOptions) -> Result<Database> {
        Self::open_mode(path, options, OpenMode::ReadWrite)
    }

    /// Opens a database read-only, as it is now (several readers may do so at once).
    ///
    /// Beside a running writer this open can fail for a moment (the writer may delete a file
    /// it has just compacted away while the open reads the file list); such an error is
    /// transient. To follow an archive that `provdb serve` is writing, use
    /// [`Database::open_secondary`], as `provdb ui` does (and `provdb query` when this open
    /// fails).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Database> {
        Self::open_mode(path, DatabaseOptions::default(), OpenMode::ReadOnly)
    }

    /// Opens a database that another process is writing (e.g. `provdb serve`), as a RocksDB
    /// secondary that catches up on [`Database::catch_up`]. `secondary_path` is a private
    /// folder for the secondary's files.
    pub fn open_secondary(path: impl AsRef<Path>, secondary_path: PathBuf) -> Result<Database> {
        Self::open_mode(
            path,
            DatabaseOptions::default(),
            OpenMode::Secondary { secondary_path },
        )
    }

    fn open_mode(
        path: impl AsRef<Path>,
        options: DatabaseOptions,
        mode: OpenMode,
    ) -> Result<Database> {
        let mode_writes = mode == OpenMode::ReadWrite;
        let store = Store::open_with(
            path,
            StoreOptions {
                mode,
                block_cache_bytes: options.block_cache_bytes,
                durability: options.durability,
                side_tables: crate::side_tables::ALL.to_vec(),
                direct_io_writes: options.direct_io_writes,
                compaction_pace: options.compaction_pace,
            },
        )?;
        let rules = match (&options.detection, mode_writes) {
            (_, false) | (Detection::Off, _) => None,
            (Detection::DefaultPack, true) => Some(Arc::new(RuleSet::default_pack())),
            (Detection::Rules(r), true) => Some(r.clone()),
        };
        // Anomaly models score the writes whenever detection is on (the latest of each scope).
        let models = match &rules {
            Some(_) => crate::anomaly::archive::latest_models(&store)?
                .into_values()
                .collect(),
            None => Vec::new(),
        };
        let detector = rules
            .filter(|r| !r.rules().is_empty() || !models.is_empty())
            .map(|r| Detector::with_models(r, models));
        Ok(Database {
            store,
            options,
            detector,
        })
    }

    /// The detector of this database's writes (none for a reader, or with detection off).
    pub fn detector(&self) -> Option<&Detector> {
        self.detector.as_ref()
    }

    /// Alerts that pass the filter, in id order.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let db = provdb::Database::open(dir.path())?;
    /// assert!(db.alerts(&provdb::detect::AlertFilter::default())?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>> {
        crate::detect::list_alerts(&self.store, filter)
    }

    /// The alert with this id.
    pub fn alert(&self, id: u64) -> Result<Option<Alert>> {
        crate::detect::get_alert(&self.store, id)
    }

    /// The options in force.
    pub fn options(&self) -> &DatabaseOptions {
        &self.options
    }

    /// The storage engine, for reads beyond this facade.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Sees the writer's latest data (secondary mode; a no-op otherwise).
    pub fn catch_up(&self) -> Result<()> {
        Ok(self.store.catch_up()?)
    }

    /// Decodes and stores one MQTT payload (base64 of zlib of a W3C document or SPADE lines).
    pub fn ingest_payload(&self, payload: &[u8]) -> Result<WriteSummary> {
        let batch = decode::decode_payload(payload, self.options.max_inflated)?;
        self.write(&batch)
    }

    /// Decodes and stores JSON text (a W3C document, SPADE lines or a SPADE array).
    pub fn ingest_json(&self, json: Vec<u8>) -> Result<WriteSummary> {
        let batch = decode::decode_text(json)?;
        self.write(&batch)
    }

    /// Stores decoded records atomically, with the alerts the detection rules raise on them
    /// (in the same write).
    pub fn write(&self, batch: &RecordBatch) -> Result<WriteSummary> {
        let Some(detector) = &self.detector else {
            return Ok(self.store.write(batch)?);
        };
        let written = (|| {
            let mut prepared = self
                .store
                .prepare_write(batch, &[], self.options.durability)?;
            let detected = detector.process(&self.store, batch, prepared.new_edges())?;
            prepared.add_side_puts(&detected.puts)?;
            Ok(self.store.commit_prepared(prepared)?)
        })();
        if written.is_err() {
            detector.reset();
        }
        written
    }

    /// Imports CamFlow files (see [`crate::import`]), reporting progress. A folder stands for
    /// its files ([`crate::import::files_to_import`]).
    pub fn import_files(
        &self,
        paths: &[PathBuf],
        progress: &mut dyn FnMut(ImportProgress),
    ) -> Result<ImportReport> {
        crate::import::import_files(self, paths, progress)
    }

    /// The vertex with this external id (with or without `cf:`).
    pub fn vertex_by_external(&self, ext_id: &str) -> Result<Option<Vertex>> {
        match self.store.vertex_id(&ExternalId::parse(ext_id))? {
            Some(id) => Ok(self.store.vertex(id)?),
            None => Ok(None),
        }
    }

    /// The edge with this external relation id (with or without `cf:`).
    pub fn edge_by_external(&self, ext_id: &str) -> Result<Option<Edge>> {
        match self.store.edge_id(&ExternalId::parse(ext_id))? {
            Some(id) => Ok(self.store.edge(id)?),
            None => Ok(None),
        }
    }

    /// Edges adjacent to `v` in `direction` whose type is one of `edge_types` (all when
    /// empty). Unknown type names match nothing.
    pub fn neighbours(
        &self,
        v: VertexId,
        direction: Direction,
        edge_types: &[&str],
    ) -> Result<Vec<Adjacent>> {
        let mut types = Vec::new();
        for name in edge_types {
            match self.store.edge_type_id(name) {
                Some(t) => types.push(t),
                None => continue,
            }
        }
        if !edge_types.is_empty() && types.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .store
            .neighbours(v, direction, &types)
            .collect::<std::result::Result<_, _>>()?)
    }

    /// Ids of the edges of a type (empty for an unknown type).
    pub fn edges_of_type(&self, edge_type: &str) -> Result<IdSet> {
        match self.store.edge_type_id(edge_type) {
            Some(t) => Ok(self.store.edges_of_type(t)?),
            None => Ok(IdSet::default()),
        }
    }

    /// Totals: vertices, stubs, edges, per-type and per-machine counts.
    pub fn stats(&self) -> Result<StoreStats> {
        Ok(self.store.stats()?)
    }

    /// Runs a traversal query (see `docs/query-language.md`) with the default guards and
    /// returns its rows; [`provdb_query::QueryResult::subgraph`] loads the matched vertices
    /// and edges.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let db = provdb::Database::open(dir.path())?;
    /// let doc = br#"{"activity":{"cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=":{"prov:type":"task","cf:pid":3666}},
    ///   "entity":{"cf:AAAACAAAACDHHQIAAAAAAAEAAABTTLt0AAAAAAAAAAA=":{"prov:type":"process_memory"}},
    ///   "wasGeneratedBy":{"cf:QAAAAAAAQIDNAgAAAAAAAAEAAABTTLt0AAAAAAAAAAA=":{"prov:type":"write",
    ///     "prov:activity":"cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=",
    ///     "prov:entity":"cf:AAAACAAAACDHHQIAAAAAAAEAAABTTLt0AAAAAAAAAAA="}}}"#;
    /// db.ingest_json(doc.to_vec())?;
    /// let r = db.query("(t:task {pid:3666}) -[e:write]-> (m) | return m.type, e.type")?;
    /// assert_eq!(r.columns, ["m.type", "e.type"]);
    /// assert_eq!(r.rows[0].values[0].to_string(), "process_memory");
    /// let g = r.subgraph(db.store())?;
    /// assert_eq!((g.vertices.len(), g.edges.len()), (2, 1));
    /// assert_eq!(db.query("() -[:write]-> () | count")?.rows[0].values[0], provdb::query::Datum::Int(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn query(&self, text: &str) -> Result<provdb_query::QueryResult> {
        Ok(provdb_query::query(&self.store, text)?)
    }

    /// Starts a query with explicit guards; rows are computed as the cursor is read.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let db = provdb::Database::open(dir.path())?;
    /// let limits = provdb::query::Limits { max_rows: 10, ..Default::default() };
    /// let cursor = db.query_cursor("(v) | return v.id", limits)?;
    /// assert_eq!(cursor.columns(), ["v.id"]);
    /// assert_eq!(cursor.count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn query_cursor(
        &self,
        text: &str,
        limits: provdb_query::Limits,
    ) -> Result<provdb_query::Cursor<'_>> {
        Ok(provdb_query::Cursor::new(&self.store, text, limits)?)
    }

    /// Verifies every invariant of the archive (see [`Store::check`]).
    pub fn check(&self) -> Result<CheckReport> {
        Ok(self.store.check()?)
    }

    /// Deletes what `selection` names (see [`Store::prune`]); for a machine, also its row of
    /// the ingest service's machine registry. With `dry_run`, only counts.
    pub fn prune(&self, selection: PruneSelection, dry_run: bool) -> Result<PruneReport> {
        let report = self.store.prune(selection, dry_run)?;
        if let (PruneSelection::Machine(m), false) = (selection, dry_run) {
            self.store.side_delete(
                crate::side_tables::MACHINES,
                &crate::side_tables::machine_registry_key(m),
            )?;
        }
        Ok(report)
    }

    /// Writes a consistent copy of the archive to the new folder `dest` (see
    /// [`Store::backup_to`]); works on a secondary instance beside a running writer.
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        Ok(self.store.backup_to(dest)?)
    }

    /// Flushes everything to disk and closes the database.
    pub fn close(self) -> Result<()> {
        Ok(self.store.close()?)
    }
}
