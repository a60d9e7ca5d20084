//! Archive operations on a whole store: verification ([`Store::check`]), retention
//! ([`Store::prune`]) and consistent copies ([`Store::backup_to`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use roaring::{RoaringBitmap, RoaringTreemap};
use rocksdb::WriteBatch;

use crate::adjacency_snapshot::{AdjacencySnapshot, Side, WHAT};
use crate::codec::{self, StoredEdge, StoredVertex};
use crate::error::{ReadError, StorageError, WriteError};
use crate::id_set::split_id;
use crate::ids::{EdgeId, TypeId, VertexId};
use crate::keys::{self, Counter, EXT_EDGE, EXT_VERTEX};
use crate::model::{Direction, ExternalId};
use crate::store::Store;
use crate::tables::{Durability, GraphHandles, OpenMode, Table, Tables};

/// Problems listed in a [`CheckReport`] at most (later ones are only counted), so that a badly
/// damaged archive does not fill memory with messages.
pub const MAX_LISTED_PROBLEMS: usize = 100;

/// Bytes of records per write of a record-by-record backup.
const BACKUP_BATCH_BYTES: usize = 32 << 20;

/// Edges deleted per atomic write of a prune: each write leaves a consistent archive.
const PRUNE_BATCH_EDGES: usize = 20_000;

/// One inconsistency found by [`Store::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckProblem {
    /// Which invariant failed (`edge endpoint`, `out adjacency`, `type index`, `counter`...).
    pub invariant: &'static str,
    /// What is wrong, naming the ids or keys involved.
    pub detail: String,
}

/// What [`Store::check`] verified and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Vertex records read.
    pub vertices: u64,
    /// Edge records read.
    pub edges: u64,
    /// Problems found in total (listed or not).
    pub problem_count: u64,
    /// The first [`MAX_LISTED_PROBLEMS`] problems.
    pub problems: Vec<CheckProblem>,
}

impl CheckReport {
    /// True when every invariant holds.
    pub fn is_ok(&self) -> bool {
        self.problem_count == 0
    }

    fn problem(&mut self, invariant: &'static str, detail: impl Into<String>) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(CheckProblem {
                invariant,
                detail: detail.into(),
            });
        }
    }
}

/// What [`Store::prune`] deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneSelection {
    /// Every vertex of the machine, every edge of the machine or touching one of its vertices,
    /// and the stub vertices that those edges leave without any edge.
    Machine(u32),
    /// Every edge whose time is before this Unix time (edges without time stay), and every
    /// endpoint of those edges that is left without any edge.
    Before(i64),
}

/// What a prune deleted (or, on a dry run, would delete).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Vertices deleted, stubs included.
    pub vertices: u64,
    /// Stub vertices among them.
    pub stub_vertices: u64,
    /// Edges deleted.
    pub edges: u64,
}

/// An index shard: column family, index key (type or machine), shard number.
type ShardKey = (Table, Vec<u8>, u64);

/// Index shards rebuilt from the records, or touched by a prune batch.
#[derive(Default)]
struct Shards {
    map: HashMap<ShardKey, RoaringBitmap>,
}

impl Shards {
    fn insert(&mut self, table: Table, index_key: &[u8], id: u64) {
        let (shard, low) = split_id(id);
        self.map
            .entry((table, index_key.to_vec(), shard))
            .or_default()
            .insert(low);
    }
}

/// Which kind of record a table holds (for `check`'s messages).
#[derive(Clone, Copy)]
enum Record {
    Vertex,
    Edge,
}

/// The invariant a missing entry of adjacency table `table` breaks.
fn adjacency_invariant(table: Table) -> &'static str {
    if table == Table::OutAdjacency {
        "out adjacency"
    } else {
        "in adjacency"
    }
}

fn u64_key(k: &[u8], what: &'static str) -> Result<u64, ReadError> {
    keys::decode_id_key(k)
        .ok_or_else(|| ReadError::corruption(what, format!("key of {} bytes", k.len())))
}

impl Store {
    /// The records of a vertex or edge table, decoded, for `check`: an unreadable key or
    /// record is `Ok(Err(problem))` (reported, and the check goes on), a failed read `Err`.
    fn decoded_records<'a, T: bincode::Decode<()> + 'a>(
        &'a self,
        table: Table,
        kind: Record,
    ) -> impl Iterator<Item = Result<std::result::Result<(u64, T), String>, ReadError>> + 'a {
        let (key, record, label) = match kind {
            Record::Vertex => ("vertex key", "vertex record", "vertex"),
            Record::Edge => ("edge key", "edge record", "edge"),
        };
        self.tables
            .scan_records(table, key)
            .map(move |item| match item {
                Ok((id, value)) => Ok(codec::decode::<T>(&value, record)
                    .map(|stored| (id, stored))
                    .map_err(|e| format!("{label} {id}: {e}"))),
                Err(e @ ReadError::Corruption { .. }) => Ok(Err(e.to_string())),
                Err(e) => Err(e),
            })
    }

    /// Verifies the archive: every edge's endpoints exist; out- and in-adjacency agree with
    /// each other and with the edge records; the type, machine and time indexes and the
    /// external-id table agree with the records; the counters agree with what is stored.
    /// Reads everything once; memory follows the indexes (compressed bitmaps), not the data.
    pub fn check(&self) -> Result<CheckReport, ReadError> {
        let mut report = CheckReport::default();
        let mut vertex_ids = RoaringTreemap::new();
        let mut rebuilt = Shards::default();
        let mut stubs = 0u64;
        let mut ext_key = Vec::with_capacity(40);
        let h = self.tables.graph_handles()?;
        // A folded archive's adjacency is the snapshot merged with the tables: checked after
        // the edges, vertex by vertex, not by looking each edge up in the tables.
        let snapshot = self.current_adjacency_snapshot();
        if let Some(Err(e)) = snapshot.as_ref().map(|s| s.check_id_index()) {
            report.problem(WHAT, e.to_string());
        }

        for item in self.decoded_records::<StoredVertex>(Table::Vertices, Record::Vertex) {
            let (id, stored) = match item? {
                Ok(record) => record,
                Err(problem) => {
                    report.problem("vertex record", problem);
                    continue;
                }
            };
            report.vertices += 1;
            vertex_ids.insert(id);
            if stored.stub {
                stubs += 1;
            }
            rebuilt.insert(Table::VertexTypeIndex, &stored.type_id.to_be_bytes(), id);
            if let Some(m) = stored.placement.machine {
                rebuilt.insert(Table::MachineIndex, &m.to_be_bytes(), id);
            }
            let ext = ExternalId::from(stored.ext_id.clone());
            // The id section alone holds the ids of the vertices it covers (format 5); an
            // entry the writer put back (a stub defined since the fold) must agree with it.
            let covered = match &snapshot {
                Some(snapshot) => check_snapshot_id(snapshot, VertexId(id), &ext, &mut report),
                None => false,
            };
            if self.tables.has_vertex_external_ids() {
                let table_id = self
                    .read_table_external_ids(&[VertexId(id)])
                    .map(|found| found.into_iter().next().flatten());
                match table_id {
                    Ok(Some(found)) if found == ext => {}
                    Ok(Some(found)) => report.problem(
                        "vertex external id",
                        format!("vertex {id} ({ext}): the id table says {found}"),
                    ),
                    Ok(None) if covered => {}
                    Ok(None) => report.problem(
                        "vertex external id",
                        format!("vertex {id} ({ext}) has no vertex_external_ids entry"),
                    ),
                    Err(e) => report.problem("vertex external id", format!("vertex {id}: {e}")),
                }
            }
            keys::external_key(EXT_VERTEX, &ext, &mut ext_key);
            let expected_stub = stored.stub.then_some(stored.type_id);
            match self.tables.db().get_pinned_cf(h.of(Table::ExternalIds)?, &ext_key)? {
                None => report.problem(
                    "external id",
                    format!("vertex {id} ({}) has no external id entry", ExternalId::from(stored.ext_id.clone())),
                ),
                Some(value) => match codec::decode_external_value(&value) {
                    Ok((found, stub)) if found == id && stub == expected_stub => {}
                    Ok((found, stub)) => report.problem(
                        "external id",
                        format!(
                            "vertex {id}: external id entry says vertex {found} (stub type {stub:?}, record {expected_stub:?})"
                        ),
                    ),
                    Err(e) => report.problem("external id", format!("vertex {id}: {e}")),
                },
            }
        }

        // The snapshot's id section names no vertex that does not exist.
        if let Some(snapshot) = &snapshot {
            for v in 0..snapshot.vertex_count() {
                if vertex_ids.contains(v) {
                    continue;
                }
                match snapshot.external_id(VertexId(v)) {
                    Ok(Some(Some(ext))) => report.problem(
                        WHAT,
                        format!("the id section names vertex {v} ({ext}), which does not exist"),
                    ),
                    Ok(_) => {}
                    Err(e) => report.problem(WHAT, e.to_string()),
                }
            }
        }
        // Every vertex has its id entry (checked above); an entry without a vertex is named.
        if self.tables.has_vertex_external_ids() {
            for item in self
                .tables
                .scan_prefix(h.of(Table::VertexExternalIds)?, &[])
            {
                let (k, _) = item?;
                match keys::decode_id_key(&k) {
                    Some(id) if vertex_ids.contains(id) => {}
                    Some(id) => report.problem(
                        "vertex external id",
                        format!("entry of vertex {id}, which does not exist"),
                    ),
                    None => {
                        report.problem("vertex external id", format!("key of {} bytes", k.len()))
                    }
                }
            }
        }

        let mut edge_ids = RoaringTreemap::new();
        let mut timed_edges = 0u64;
        for item in self.decoded_records::<StoredEdge>(Table::Edges, Record::Edge) {
            let (id, stored) = match item? {
                Ok(record) => record,
                Err(problem) => {
                    report.problem("edge record", problem);
                    continue;
                }
            };
            report.edges += 1;
            edge_ids.insert(id);
            for (end, vertex) in [("source", stored.src), ("destination", stored.dst)] {
                if !vertex_ids.contains(vertex) {
                    report.problem(
                        "edge endpoint",
                        format!("edge {id}: {end} vertex {vertex} does not exist"),
                    );
                }
            }
            let t = TypeId(stored.type_id);
            let (src, dst, e) = (VertexId(stored.src), VertexId(stored.dst), EdgeId(id));
            // A folded archive's adjacency is checked vertex by vertex after the edges.
            if snapshot.is_none() {
                for (table, key) in [
                    (Table::OutAdjacency, keys::adjacency_key(src, t, e, dst)),
                    (Table::InAdjacency, keys::adjacency_key(dst, t, e, src)),
                ] {
                    if self.tables.db().get_pinned_cf(h.of(table)?, key)?.is_none() {
                        report.problem(
                            adjacency_invariant(table),
                            format!("edge {id} ({} -> {}) has no {table} entry", src.0, dst.0),
                        );
                    }
                }
            }
            if let Some(time) = stored.placement.time {
                timed_edges += 1;
                let key = keys::time_key(time, e);
                if self
                    .tables
                    .db()
                    .get_pinned_cf(h.of(Table::EdgeTimeIndex)?, key)?
                    .is_none()
                {
                    report.problem(
                        "time index",
                        format!("edge {id} (time {time}) is not in the time index"),
                    );
                }
            }
            rebuilt.insert(Table::EdgeTypeIndex, &stored.type_id.to_be_bytes(), id);
            keys::external_key(EXT_EDGE, &stored.ext_id.clone().into(), &mut ext_key);
            match self
                .tables
                .db()
                .get_pinned_cf(h.of(Table::ExternalIds)?, &ext_key)?
            {
                Some(value) if matches!(codec::decode_external_value(&value), Ok((found, None)) if found == id) =>
                    {}
                Some(_) => report.problem(
                    "external id",
                    format!("edge {id}: external id entry names another edge"),
                ),
                None => report.problem(
                    "external id",
                    format!(
                        "edge {id} ({}) has no external id entry",
                        ExternalId::from(stored.ext_id.clone())
                    ),
                ),
            }
        }

        // Every edge has its two adjacency entries (checked above); equal counts then mean no
        // entry without an edge. Only on a mismatch is each entry looked up, to name it.
        match &snapshot {
            None => {
                for table in [Table::OutAdjacency, Table::InAdjacency] {
                    let mut entries = 0u64;
                    for item in self.tables.scan_prefix(h.of(table)?, &[]) {
                        item?;
                        entries += 1;
                    }
                    if entries != report.edges {
                        self.list_stray_adjacency(&h, table, &edge_ids, &mut report)?;
                    }
                }
            }
            Some(snapshot) => self.check_merged_adjacency(&h, snapshot, &edge_ids, &mut report)?,
        }
        let mut time_entries = 0u64;
        for item in self.tables.scan_prefix(h.of(Table::EdgeTimeIndex)?, &[]) {
            let (k, _) = item?;
            time_entries += 1;
            let edge = k.get(8..16).map(|s| u64_key(s, "time index key"));
            match edge {
                Some(Ok(e)) if edge_ids.contains(e) => {}
                Some(Ok(e)) => report.problem(
                    "time index",
                    format!("time index names edge {e}, which does not exist"),
                ),
                _ => report.problem("time index", format!("key of {} bytes", k.len())),
            }
        }
        if time_entries != timed_edges {
            report.problem(
                "time index",
                format!("{time_entries} entries for {timed_edges} edges with a time"),
            );
        }

        for table in [
            Table::VertexTypeIndex,
            Table::EdgeTypeIndex,
            Table::MachineIndex,
        ] {
            self.compare_index(&h, table, &mut rebuilt, &mut report)?;
        }
        for ((table, index_key, shard), bitmap) in rebuilt.map {
            if !bitmap.is_empty() {
                report.problem(
                    "index",
                    format!(
                        "{table} has no shard {shard} for key {index_key:02x?} ({} ids missing)",
                        bitmap.len()
                    ),
                );
            }
        }

        let mut external = 0u64;
        for item in self.tables.scan_prefix(h.of(Table::ExternalIds)?, &[]) {
            item?;
            external += 1;
        }
        if external != report.vertices + report.edges {
            report.problem(
                "external id",
                format!(
                    "{external} external id entries for {} vertices and {} edges",
                    report.vertices, report.edges
                ),
            );
        }

        let counters = self.tables.read_counters()?;
        let (pruned_vertices, pruned_edges) = (counters.pruned_vertices, counters.pruned_edges);
        if vertex_ids.max().is_some_and(|m| m >= counters.next_vertex) {
            report.problem(
                "counter",
                format!(
                    "vertex id {:?} at or above the next vertex id {}",
                    vertex_ids.max(),
                    counters.next_vertex
                ),
            );
        }
        if edge_ids.max().is_some_and(|m| m >= counters.next_edge) {
            report.problem(
                "counter",
                format!(
                    "edge id {:?} at or above the next edge id {}",
                    edge_ids.max(),
                    counters.next_edge
                ),
            );
        }
        if counters.next_vertex.checked_sub(pruned_vertices) != Some(report.vertices) {
            report.problem(
                "counter",
                format!(
                    "counters say {} vertices ({} allocated - {pruned_vertices} pruned), {} stored",
                    counters.next_vertex.wrapping_sub(pruned_vertices),
                    counters.next_vertex,
                    report.vertices
                ),
            );
        }
        if counters.next_edge.checked_sub(pruned_edges) != Some(report.edges) {
            report.problem(
                "counter",
                format!(
                    "counters say {} edges ({} allocated - {pruned_edges} pruned), {} stored",
                    counters.next_edge.wrapping_sub(pruned_edges),
                    counters.next_edge,
                    report.edges
                ),
            );
        }
        if counters.stubs != stubs {
            report.problem(
                "counter",
                format!(
                    "stub counter says {}, {stubs} stub vertices stored",
                    counters.stubs
                ),
            );
        }
        Ok(report)
    }

    /// Verifies a folded archive's adjacency: the snapshot's checksum and edge mark, then each
    /// vertex's entries as every read sees them (the snapshot's merged with the tables')
    /// against the edge records, and that every edge has its entry in each direction.
    fn check_merged_adjacency(
        &self,
        h: &GraphHandles<'_>,
        snapshot: &Arc<AdjacencySnapshot>,
        edge_ids: &RoaringTreemap,
        report: &mut CheckReport,
    ) -> Result<(), ReadError> {
        match snapshot.verify_checksum() {
            Ok(true) => {}
            Ok(false) => {
                report.problem(WHAT, "the file does not match its checksum");
                return Ok(());
            }
            Err(e) => {
                report.problem(WHAT, e.to_string());
                return Ok(());
            }
        }
        let mark = snapshot.pointer().edge_mark;
        for side in [Side::Out, Side::In] {
            for entry in snapshot.entries(side) {
                match entry {
                    Ok((v, _, e, _)) if e.0 >= mark => report.problem(
                        WHAT,
                        format!(
                            "{side:?} record of vertex {} holds edge {}, at or above the edge mark {mark}",
                            v.0, e.0
                        ),
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        report.problem(WHAT, e.to_string());
                        return Ok(());
                    }
                }
            }
        }
        let vertex_count = self.tables.read_counters()?.next_vertex;
        for (direction, table) in [
            (Direction::Out, Table::OutAdjacency),
            (Direction::In, Table::InAdjacency),
        ] {
            let mut seen = RoaringTreemap::new();
            let mut scan = self.adjacency_cursor(direction, &[]);
            for v in 0..vertex_count {
                scan.restart(VertexId(v));
                for adj in &mut scan {
                    let adj = match adj {
                        Ok(adj) => adj,
                        Err(e) => {
                            report.problem(adjacency_invariant(table), e.to_string());
                            break;
                        }
                    };
                    let matches = edge_ids.contains(adj.edge.0)
                        && self.edge_record(h, adj.edge)?.is_some_and(|stored| {
                            let (from, to) = if direction == Direction::Out {
                                (stored.src, stored.dst)
                            } else {
                                (stored.dst, stored.src)
                            };
                            stored.type_id == adj.edge_type.0 && from == v && to == adj.neighbour.0
                        });
                    if matches {
                        seen.insert(adj.edge.0);
                    } else {
                        report.problem(
                            "adjacency",
                            format!(
                                "{table} entry (vertex {v}, type {}, edge {}, neighbour {}) matches no edge",
                                adj.edge_type.0, adj.edge.0, adj.neighbour.0
                            ),
                        );
                    }
                }
            }
            for e in (edge_ids - &seen).iter() {
                report.problem(
                    adjacency_invariant(table),
                    format!("edge {e} has no {table} entry"),
                );
            }
        }
        Ok(())
    }

    /// Names the adjacency entries of `table` that match no edge record.
    fn list_stray_adjacency(
        &self,
        h: &GraphHandles<'_>,
        table: Table,
        edge_ids: &RoaringTreemap,
        report: &mut CheckReport,
    ) -> Result<(), ReadError> {
        for item in self.tables.scan_prefix(h.of(table)?, &[]) {
            let (k, _) = item?;
            let Some((v, t, e, other)) = keys::decode_adjacency_key(&k) else {
                report.problem("adjacency", format!("{table}: key of {} bytes", k.len()));
                continue;
            };
            let matches = edge_ids.contains(e.0)
                && self.edge_record(h, e)?.is_some_and(|stored| {
                    let (from, to) = if table == Table::OutAdjacency {
                        (stored.src, stored.dst)
                    } else {
                        (stored.dst, stored.src)
                    };
                    stored.type_id == t.0 && from == v.0 && to == other.0
                });
            if !matches {
                report.problem(
                    "adjacency",
                    format!(
                        "{table} entry (vertex {}, type {}, edge {}, neighbour {}) matches no edge",
                        v.0, t.0, e.0, other.0
                    ),
                );
            }
        }
        Ok(())
    }

    /// Compares a stored roaring index with the one rebuilt from the records, removing the
    /// compared shards from `rebuilt`.
    fn compare_index(
        &self,
        h: &GraphHandles<'_>,
        table: Table,
        rebuilt: &mut Shards,
        report: &mut CheckReport,
    ) -> Result<(), ReadError> {
        let index_key_len = if table == Table::MachineIndex { 4 } else { 2 };
        for item in self.tables.scan_prefix(h.of(table)?, &[]) {
            let (k, v) = item?;
            if k.len() != index_key_len + 8 {
                report.problem("index", format!("{table}: key of {} bytes", k.len()));
                continue;
            }
            let (index_key, shard) = k.split_at(index_key_len);
            let shard = u64_key(shard, "index key")?;
            let stored = match RoaringBitmap::deserialize_from(&v[..]) {
                Ok(b) => b,
                Err(e) => {
                    report.problem("index", format!("{table} shard {shard}: {e}"));
                    continue;
                }
            };
            let expected = rebuilt
                .map
                .remove(&(table, index_key.to_vec(), shard))
                .unwrap_or_default();
            if stored != expected {
                let id = |low: u32| (shard << keys::SHARD_BITS) | u64::from(low);
                let extra: Vec<u64> = (&stored - &expected).iter().take(5).map(id).collect();
                let missing: Vec<u64> = (&expected - &stored).iter().take(5).map(id).collect();
                report.problem(
                    "index",
                    format!(
                        "{table} key {index_key:02x?}: ids without a matching record {extra:?}, records missing from the index {missing:?}"
                    ),
                );
            }
        }
        Ok(())
    }

    fn edge_record(
        &self,
        h: &GraphHandles<'_>,
        e: EdgeId,
    ) -> Result<Option<StoredEdge>, ReadError> {
        match self
            .tables
            .db()
            .get_pinned_cf(h.of(Table::Edges)?, keys::id_key(e.0))?
        {
            Some(bytes) => Ok(Some(codec::decode(&bytes, "edge record")?)),
            None => Ok(None),
        }
    }

    fn vertex_record(
        &self,
        h: &GraphHandles<'_>,
        v: u64,
    ) -> Result<Option<StoredVertex>, ReadError> {
        match self
            .tables
            .db()
            .get_pinned_cf(h.of(Table::Vertices)?, keys::id_key(v))?
        {
            Some(bytes) => Ok(Some(codec::decode(&bytes, "vertex record")?)),
            None => Ok(None),
        }
    }

    /// Deletes what `selection` names, with its adjacency, index, external-id and counter
    /// entries, in atomic, fsynced writes of [`PRUNE_BATCH_EDGES`] edges (edges first, then
    /// the vertices they leave behind), so that the archive is consistent after each one and a
    /// prune cut short completes when run again. Then compacts the affected ranges. With
    /// `dry_run`, only counts. Needs the store open for writing. An archive with an adjacency
    /// snapshot is unfolded first (its entries written back into the tables) and folded again
    /// at the end; one whose prune was cut short in between stays unfolded until the next
    /// `fold_adjacency`.
    pub fn prune(
        &self,
        selection: PruneSelection,
        dry_run: bool,
    ) -> Result<PruneReport, WriteError> {
        self.tables.check_writable()?;
        // No fold beside the unfold and the fold again (the fold lock is taken first).
        let _folding = self.fold_lock.lock();
        // Nothing may be half-prepared while records are deleted under the writer.
        let mut writer = self.writer.exclusive();
        let h = &self.tables.graph_handles()?;
        let mut edges = RoaringTreemap::new();
        let mut vertices = RoaringTreemap::new();
        match selection {
            PruneSelection::Machine(m) => {
                for v in self.vertices_of_machine(m)?.iter() {
                    vertices.insert(v);
                }
                for item in self.tables.scan_prefix(h.of(Table::Edges)?, &[]) {
                    let (k, v) = item?;
                    let id = u64_key(&k, "edge key")?;
                    let stored: StoredEdge = codec::decode(&v, "edge record")?;
                    if stored.placement.machine == Some(m)
                        || vertices.contains(stored.src)
                        || vertices.contains(stored.dst)
                    {
                        edges.insert(id);
                    }
                }
            }
            PruneSelection::Before(t) => {
                if let Some(last) = t.checked_sub(1) {
                    for e in self.edges_in_time_range(i64::MIN, last) {
                        edges.insert(e?.0);
                    }
                }
            }
        }
        // Endpoints left without any edge go with the edges (for a machine prune, only stubs:
        // a defined vertex of another machine keeps its own record).
        let mut left_behind = RoaringTreemap::new();
        for e in edges.iter() {
            let Some(stored) = self.edge_record(h, EdgeId(e))? else {
                continue;
            };
            for v in [stored.src, stored.dst] {
                if vertices.contains(v) || left_behind.contains(v) {
                    continue;
                }
                let isolated = self
                    .neighbours(VertexId(v), crate::model::Direction::Both, &[])
                    .try_fold(true, |all, adj| {
                        Ok::<_, ReadError>(all && edges.contains(adj?.edge.0))
                    })?;
                if isolated {
                    let keep = matches!(selection, PruneSelection::Machine(_))
                        && !self.vertex_record(h, v)?.is_some_and(|r| r.stub);
                    if !keep {
                        left_behind.insert(v);
                    }
                }
            }
        }
        vertices |= left_behind;

        let mut report = PruneReport {
            vertices: vertices.len(),
            edges: edges.len(),
            stub_vertices: 0,
        };
        for v in vertices.iter() {
            if self.vertex_record(h, v)?.is_some_and(|r| r.stub) {
                report.stub_vertices += 1;
            }
        }
        if dry_run || (edges.is_empty() && vertices.is_empty()) {
            return Ok(report);
        }

        // Only the tables can lose entries: the snapshot's go back into them first, and are
        // folded again once the records are gone.
        let unfolded = self.unfold_adjacency(&mut writer)?;
        let edge_list: Vec<u64> = edges.iter().collect();
        for chunk in edge_list.chunks(PRUNE_BATCH_EDGES) {
            self.delete_records(h, chunk, &[])?;
        }
        let vertex_list: Vec<u64> = vertices.iter().collect();
        for chunk in vertex_list.chunks(PRUNE_BATCH_EDGES) {
            self.delete_records(h, &[], chunk)?;
        }

        // Compaction drops the tombstones and the deleted values from disk.
        let span = |set: &RoaringTreemap| {
            set.min().zip(set.max()).map(|(lo, hi)| {
                (
                    keys::id_key(lo).to_vec(),
                    keys::id_key(hi.saturating_add(1)).to_vec(),
                )
            })
        };
        if let Some((lo, hi)) = span(&edges) {
            self.tables
                .db()
                .compact_range_cf(h.of(Table::Edges)?, Some(&lo), Some(&hi));
        }
        if let Some((lo, hi)) = span(&vertices) {
            self.tables
                .db()
                .compact_range_cf(h.of(Table::Vertices)?, Some(&lo), Some(&hi));
        }
        if let PruneSelection::Before(t) = selection {
            let hi = keys::time_prefix(t);
            self.tables.db().compact_range_cf(
                h.of(Table::EdgeTimeIndex)?,
                None::<&[u8]>,
                Some(&hi[..]),
            );
        }
        // Adjacency and external ids of the deleted records are spread over the key space.
        for name in [
            Table::OutAdjacency,
            Table::InAdjacency,
            Table::ExternalIds,
            Table::VertexTypeIndex,
            Table::EdgeTypeIndex,
            Table::MachineIndex,
        ] {
            self.tables
                .db()
                .compact_range_cf(h.of(name)?, None::<&[u8]>, None::<&[u8]>);
        }
        if unfolded {
            let folded = self.fold_adjacency_under(&mut writer)?;
            self.drop_folded_entries(&folded)?;
        }
        self.reload_under(&mut writer)?;
        Ok(report)
    }

    /// Deletes edges and vertices, with every entry that refers to them, in one fsynced write.
    /// The caller deletes a vertex only once its edges are gone.
    fn delete_records(
        &self,
        h: &GraphHandles<'_>,
        edges: &[u64],
        vertices: &[u64],
    ) -> Result<(), WriteError> {
        let mut batch = WriteBatch::default();
        let mut touched: HashMap<ShardKey, RoaringBitmap> = HashMap::new();
        let mut remove =
            |tables: &Tables, table: Table, index_key: &[u8], id: u64| -> Result<(), WriteError> {
                let (shard, low) = split_id(id);
                let key = (table, index_key.to_vec(), shard);
                if !touched.contains_key(&key) {
                    let bitmap =
                        tables.read_shard(h.of(table)?, &keys::shard_key(index_key, shard))?;
                    touched.insert(key.clone(), bitmap);
                }
                if let Some(b) = touched.get_mut(&key) {
                    b.remove(low);
                }
                Ok(())
            };
        let mut ext_key = Vec::with_capacity(40);
        let (mut deleted_edges, mut deleted_vertices, mut deleted_stubs) = (0u64, 0u64, 0u64);
        for &e in edges {
            let Some(stored) = self.edge_record(h, EdgeId(e))? else {
                continue;
            };
            let t = TypeId(stored.type_id);
            let (src, dst) = (VertexId(stored.src), VertexId(stored.dst));
            batch.delete_cf(h.of(Table::Edges)?, keys::id_key(e));
            batch.delete_cf(
                h.of(Table::OutAdjacency)?,
                keys::adjacency_key(src, t, EdgeId(e), dst),
            );
            batch.delete_cf(
                h.of(Table::InAdjacency)?,
                keys::adjacency_key(dst, t, EdgeId(e), src),
            );
            if let Some(time) = stored.placement.time {
                batch.delete_cf(h.of(Table::EdgeTimeIndex)?, keys::time_key(time, EdgeId(e)));
            }
            keys::external_key(EXT_EDGE, &stored.ext_id.clone().into(), &mut ext_key);
            batch.delete_cf(h.of(Table::ExternalIds)?, &ext_key);
            remove(&self.tables, Table::EdgeTypeIndex, &t.0.to_be_bytes(), e)?;
            deleted_edges += 1;
        }
        for &v in vertices {
            let Some(stored) = self.vertex_record(h, v)? else {
                continue;
            };
            batch.delete_cf(h.of(Table::Vertices)?, keys::id_key(v));
            if self.tables.has_vertex_external_ids() {
                batch.delete_cf(h.of(Table::VertexExternalIds)?, keys::id_key(v));
            }
            keys::external_key(EXT_VERTEX, &stored.ext_id.clone().into(), &mut ext_key);
            batch.delete_cf(h.of(Table::ExternalIds)?, &ext_key);
            remove(
                &self.tables,
                Table::VertexTypeIndex,
                &stored.type_id.to_be_bytes(),
                v,
            )?;
            if let Some(m) = stored.placement.machine {
                remove(&self.tables, Table::MachineIndex, &m.to_be_bytes(), v)?;
            }
            if stored.stub {
                deleted_stubs += 1;
            }
            deleted_vertices += 1;
        }
        let mut buf = Vec::new();
        for ((table, index_key, shard), bitmap) in touched {
            let key = keys::shard_key(&index_key, shard);
            if bitmap.is_empty() {
                batch.delete_cf(h.of(table)?, key);
            } else {
                buf.clear();
                bitmap
                    .serialize_into(&mut buf)
                    .map_err(|e| WriteError::corruption("index bitmap", e.to_string()))?;
                batch.put_cf(h.of(table)?, key, &buf);
            }
        }
        for (counter, delta, add) in [
            (Counter::PrunedEdges, deleted_edges, true),
            (Counter::PrunedVertices, deleted_vertices, true),
            (Counter::Stubs, deleted_stubs, false),
        ] {
            let current = self.tables.read_counter(counter)?;
            let value = if add {
                current.checked_add(delta)
            } else {
                current.checked_sub(delta)
            }
            .ok_or_else(|| WriteError::corruption("counter", "out of range after prune"))?;
            Tables::put_counter(&mut batch, h.meta, counter, value);
        }
        self.tables.write(batch, Durability::Sync)
    }

    /// Writes a consistent copy of the archive to `dest` (a folder that must not exist); the
    /// copy opens as an archive directly, with the adjacency snapshot where the archive has
    /// one of its present state and is open for writing.
    ///
    /// Opened for writing (nobody else writes), the copy is a RocksDB checkpoint after a flush:
    /// SST files hard-linked where `dest` is on the same file system, copied otherwise. On a
    /// secondary or read-only instance (another process writes), a checkpoint would miss the
    /// writes this instance replayed from the writer's log into memory, so the copy is made
    /// record by record: catch up with the writer, then copy every column family. The
    /// instance does not move between catch-ups, so the copy holds every batch the writer had
    /// committed then, and no part of a later one.
    pub fn backup_to(&self, dest: &Path) -> Result<(), StorageError> {
        if *self.tables.mode() == OpenMode::ReadWrite {
            // Under the writer, so that no fold replaces the snapshot the checkpoint names.
            let _writer = self.writer.exclusive();
            self.flush()?;
            rocksdb::checkpoint::Checkpoint::new(self.tables.db())
                .and_then(|checkpoint| checkpoint.create_checkpoint(dest))
                .map_err(WriteError::from)?;
            if let Some(snapshot) = self.current_adjacency_snapshot() {
                snapshot.copy_into(dest)?;
            }
            return Ok(());
        }
        self.catch_up()?;
        // The snapshot this instance's view names (the copy's `meta` names it too), read from
        // the open file: the writer may have folded and removed it since.
        let snapshot = self.current_adjacency_snapshot();
        let mut copy = Store::open(dest)?;
        // The copy's side tables are this archive's, whatever they are.
        // Listed in the copy, so that `close` flushes them (the copy is written without a log).
        for name in self.tables.side_table_names() {
            copy.tables.create_side_table(name)?;
        }
        // The copy is made durable by the flush of `close`, not by a log of its own.
        let mut opts = rocksdb::WriteOptions::default();
        opts.disable_wal(true);
        let target_db = copy.tables.db();
        for name in self.tables.table_names() {
            let Some(target) = target_db.cf_handle(name) else {
                return Err(WriteError::corruption(
                    "backup",
                    format!("table {name} is missing in the copy"),
                )
                .into());
            };
            let mut batch = WriteBatch::default();
            for item in self.tables.scan_prefix(self.tables.cf_named(name)?, &[]) {
                let (k, v) = item?;
                batch.put_cf(target, k, v);
                if batch.size_in_bytes() > BACKUP_BATCH_BYTES {
                    target_db
                        .write_opt(std::mem::take(&mut batch), &opts)
                        .map_err(WriteError::from)?;
                }
            }
            target_db
                .write_opt(batch, &opts)
                .map_err(WriteError::from)?;
        }
        copy.close()?;
        if let Some(snapshot) = snapshot {
            snapshot.copy_into(dest)?;
        }
        Ok(())
    }
}

/// Checks the adjacency snapshot's id section for vertex `v`, whose record says `ext`: where
/// the section covers `v` it maps `v` to `ext` and `ext` back to `v`. Says whether it covers
/// `v` (a damaged block is reported, and counts as covering).
fn check_snapshot_id(
    snapshot: &AdjacencySnapshot,
    v: VertexId,
    ext: &ExternalId,
    report: &mut CheckReport,
) -> bool {
    match snapshot.external_id(v) {
        Ok(None) => return false,
        Ok(Some(Some(found))) if &found == ext => {}
        Ok(Some(found)) => {
            let found = found.map_or("no id".to_owned(), |f| f.to_string());
            report.problem(
                WHAT,
                format!("vertex {} ({ext}): the id section says {found}", v.0),
            );
        }
        Err(e) => report.problem(WHAT, e.to_string()),
    }
    match snapshot.vertex_of(ext) {
        Ok(Some(found)) if found == v => {}
        Ok(found) => report.problem(
            WHAT,
            format!(
                "the id section finds {ext} at {found:?}, not vertex {}",
                v.0
            ),
        ),
        Err(e) => report.problem(WHAT, e.to_string()),
    }
    true
}
