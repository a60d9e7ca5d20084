//! Export of an archive (or part of it) to formats other tools read: W3C PROV-JSON (the
//! Python `prov` package, PROV tools) and SPADE JSON lines. Both stream: memory holds one
//! record and the id sets of the selection (compressed bitmaps), whatever the archive's size.
//! A selection by ids (a query's subgraph, the page's visible graph) reads only its records,
//! by point look-up, not the archive. Both import back into provdb as the same graph.

use std::io::Write;

use provdb_storage::{
    Edge, EdgeId, ExternalId, ProvClass, ProvRelation, ReadError, Store, Value, Vertex, VertexId,
};
use roaring::RoaringTreemap;
use serde_json::{Map, Value as Json};

use crate::Result;

/// Namespace declared for the `cf:` prefix of ids and CamFlow attributes.
pub const CAMFLOW_NAMESPACE: &str = "http://camflow.org/";

/// What to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ExportSelection {
    /// Everything stored.
    #[default]
    All,
    /// Filters; an empty list or `None` does not filter.
    Filter {
        /// Only vertices and edges of these machines.
        machines: Vec<u32>,
        /// Only edges at or after this Unix time (edges without a time are left out).
        since: Option<i64>,
        /// Only edges at or before this Unix time (edges without a time are left out).
        until: Option<i64>,
    },
    /// These vertices and edges (e.g. a query's subgraph), by internal id.
    Ids {
        /// Vertex ids.
        vertices: Vec<u64>,
        /// Edge ids.
        edges: Vec<u64>,
    },
}

/// Output format of [`export`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One W3C PROV-JSON document (on one line, so that `provdb import` reads it back).
    ProvJson,
    /// SPADE JSON lines, one record per line (vertices first).
    Spade,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Vertex elements written.
    pub vertices: u64,
    /// Edge elements written.
    pub edges: u64,
    /// Stub vertices left out: they were never defined (an edge names them; importing the
    /// export makes them stubs again).
    pub stubs_skipped: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// The ids an export includes; `None` means all.
struct Chosen {
    vertices: Option<RoaringTreemap>,
    edges: Option<Filter>,
    /// How the chosen records are read.
    reading: Reading,
}

/// How an export reads the records it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Scan every record and keep the chosen: the whole archive or a filter (which may keep
    /// most of it).
    Scan,
    /// Look each chosen id up: a selection by ids is typically a few records of a large
    /// archive (the page's 20 visible vertices of a million), so it reads only those.
    LookUp,
}

/// Records in id order: each of `look_up_ids` looked up (ids of no record left out, as a scan
/// never meets them), or without it a scan of those `keep` accepts. Both give the same
/// records in the same order, so both readings write the same bytes.
fn records<'a, T: 'a>(
    look_up_ids: Option<&'a RoaringTreemap>,
    look_up: impl Fn(u64) -> std::result::Result<Option<T>, ReadError> + 'a,
    scan: impl FnOnce() -> Box<dyn Iterator<Item = std::result::Result<T, ReadError>> + 'a>,
    keep: impl Fn(&T) -> bool + 'a,
) -> Box<dyn Iterator<Item = Result<T>> + 'a> {
    match look_up_ids {
        Some(ids) => Box::new(
            ids.iter()
                .filter_map(move |id| look_up(id).transpose())
                .map(|r| r.map_err(crate::Error::from)),
        ),
        None => Box::new(
            scan()
                .map(|r| r.map_err(crate::Error::from))
                .filter(move |r| r.as_ref().map_or(true, &keep)),
        ),
    }
}

impl Chosen {
    /// The chosen vertices in id order.
    fn vertices<'a>(&'a self, store: &'a Store) -> Box<dyn Iterator<Item = Result<Vertex>> + 'a> {
        let look_up_ids = self
            .vertices
            .as_ref()
            .filter(|_| self.reading == Reading::LookUp);
        records(
            look_up_ids,
            |id| store.vertex(VertexId(id)),
            || Box::new(store.scan_vertices()),
            |v: &Vertex| self.vertices.as_ref().is_none_or(|s| s.contains(v.id.0)),
        )
    }

    /// The chosen edges in id order.
    fn edges<'a>(&'a self, store: &'a Store) -> Box<dyn Iterator<Item = Result<Edge>> + 'a> {
        let look_up_ids = match (&self.edges, self.reading) {
            (Some(Filter::Ids(ids)), Reading::LookUp) => Some(ids),
            _ => None,
        };
        records(
            look_up_ids,
            |id| store.edge(EdgeId(id)),
            || Box::new(store.scan_edges()),
            |e: &Edge| self.edges.as_ref().is_none_or(|f| f.accepts(e)),
        )
    }
}

enum Filter {
    Ids(RoaringTreemap),
    Where {
        machines: Vec<u32>,
        since: Option<i64>,
        until: Option<i64>,
    },
}

impl Filter {
    fn accepts(&self, e: &Edge) -> bool {
        match self {
            Filter::Ids(ids) => ids.contains(e.id.0),
            Filter::Where {
                machines,
                since,
                until,
            } => {
                let machine_ok = machines.is_empty()
                    || e.placement.machine.is_some_and(|m| machines.contains(&m));
                let time_ok = match (since, until, e.placement.time) {
                    (None, None, _) => true,
                    (_, _, None) => false,
                    (s, u, Some(t)) => s.is_none_or(|s| t >= s) && u.is_none_or(|u| t <= u),
                };
                machine_ok && time_ok
            }
        }
    }
}

fn choose(store: &Store, selection: &ExportSelection) -> Result<Chosen> {
    Ok(match selection {
        ExportSelection::All => Chosen {
            vertices: None,
            edges: None,
            reading: Reading::Scan,
        },
        ExportSelection::Ids { vertices, edges } => {
            let edges: RoaringTreemap = edges.iter().copied().collect();
            let mut chosen: RoaringTreemap = vertices.iter().copied().collect();
            // Edge endpoints come along, so that the export is a graph on its own.
            for e in edges.iter() {
                if let Some(edge) = store.edge(EdgeId(e))? {
                    chosen.insert(edge.src.0);
                    chosen.insert(edge.dst.0);
                }
            }
            Chosen {
                vertices: Some(chosen),
                edges: Some(Filter::Ids(edges)),
                reading: Reading::LookUp,
            }
        }
        ExportSelection::Filter {
            machines,
            since,
            until,
        } => {
            let filter = Filter::Where {
                machines: machines.clone(),
                since: *since,
                until: *until,
            };
            let mut chosen = RoaringTreemap::new();
            for e in store.scan_edges() {
                let e = e?;
                if filter.accepts(&e) {
                    chosen.insert(e.src.0);
                    chosen.insert(e.dst.0);
                }
            }
            // Without a time window, a machine's vertices come whether they have edges or not.
            if since.is_none() && until.is_none() {
                for m in machines {
                    for v in store.vertices_of_machine(*m)?.iter() {
                        chosen.insert(v);
                    }
                }
            }
            Chosen {
                vertices: Some(chosen),
                edges: Some(filter),
                reading: Reading::Scan,
            }
        }
    })
}

/// A stored attribute value as JSON, with the kind it arrived with (CamFlow's quoted 64-bit
/// integers stay strings; nested objects stay objects).
///
/// ```
/// use provdb::Value;
/// assert_eq!(provdb::export::json_value(&Value::Str("42".into())), serde_json::json!("42"));
/// assert_eq!(provdb::export::json_value(&Value::Json("[1]".into())), serde_json::json!([1]));
/// ```
pub fn json_value(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Json(text) => {
            serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.clone()))
        }
    }
}

fn attrs_into(map: &mut Map<String, Json>, attrs: &[(std::sync::Arc<str>, Value)]) {
    for (k, v) in attrs {
        map.insert(k.to_string(), json_value(v));
    }
}

/// Attributes as the text of one JSON object, kinds kept (the Parquet `attributes` column).
#[cfg_attr(not(feature = "parquet"), allow(dead_code))]
pub(crate) fn attributes_json(attrs: &[(std::sync::Arc<str>, Value)]) -> String {
    let mut map = Map::new();
    attrs_into(&mut map, attrs);
    Json::Object(map).to_string()
}

fn qualified(ext: &ExternalId) -> String {
    format!("cf:{ext}")
}

/// PROV-JSON section and (sender key, receiver key) of a relation, as the W3C decoder reads
/// them. The pre-2017 CamFlow `relation` section (`cf:sender` -> `cf:receiver`) is no PROV
/// relation: it is exported as its PROV generalization, `wasInfluencedBy`.
fn prov_section(relation: ProvRelation) -> Option<(&'static str, &'static str, &'static str)> {
    let relation = match relation {
        ProvRelation::Relation => ProvRelation::WasInfluencedBy,
        other => other,
    };
    let (_, sender, receiver) = crate::decode::w3c::relation_section(relation.as_str())?;
    Some((relation.as_str(), sender, receiver))
}

/// SPADE record type of a relation: its PROV name, capitalized (`Used`, `WasGeneratedBy`);
/// the legacy `relation` section as `WasInfluencedBy`, as in PROV-JSON.
fn spade_type(relation: ProvRelation) -> String {
    let name = match relation {
        ProvRelation::Relation => ProvRelation::WasInfluencedBy.as_str(),
        other => other.as_str(),
    };
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn class_section(class: ProvClass) -> Option<&'static str> {
    match class {
        ProvClass::Activity => Some("activity"),
        ProvClass::Entity => Some("entity"),
        ProvClass::Agent => Some("agent"),
        ProvClass::Unknown => None,
    }
}

/// Counts what is written.
struct Counting<W: Write> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn io(e: std::io::Error) -> crate::Error {
    crate::Error::Io {
        path: "export output".into(),
        source: e,
    }
}

pub(crate) fn ext_of(store: &Store, v: VertexId) -> Result<ExternalId> {
    store.vertex(v)?.map(|v| v.ext_id).ok_or_else(|| {
        crate::Error::from(provdb_storage::ReadError::Corruption {
            what: "edge record",
            detail: format!(
                "endpoint vertex {} does not exist (run `provdb check`)",
                v.0
            ),
        })
    })
}

/// Writes the selected part of `store` to `out` in `format`, calling `progress` with the
/// number of records written so far (every 10,000 records and at the end). Flushes `out`;
/// making a file durable is the caller's (`File::sync_all`).
pub fn export(
    store: &Store,
    selection: &ExportSelection,
    format: ExportFormat,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportReport> {
    let chosen = choose(store, selection)?;
    write_chosen(store, &chosen, format, out, progress)
}

/// [`export`] of what [`choose`] chose (the tests set its reading, to compare both).
fn write_chosen(
    store: &Store,
    chosen: &Chosen,
    format: ExportFormat,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportReport> {
    let mut w = Counting {
        inner: std::io::BufWriter::with_capacity(1 << 20, out),
        bytes: 0,
    };
    let mut report = ExportReport::default();
    let mut tick = |report: &ExportReport| {
        let n = report.vertices + report.edges;
        if n % 10_000 == 0 {
            progress(n);
        }
    };
    match format {
        ExportFormat::ProvJson => {
            let prefix = serde_json::json!({ "cf": CAMFLOW_NAMESPACE });
            write!(w, "{{\"prefix\":{prefix}").map_err(io)?;
            // One pass per section: PROV-JSON groups elements by section, and a pass costs
            // less than holding the archive.
            for section in ["activity", "entity", "agent"] {
                let mut out_section = JsonSection::new(section);
                for v in chosen.vertices(store) {
                    let v = v?;
                    if class_section(v.class) != Some(section) {
                        if v.stub && section == "activity" {
                            report.stubs_skipped += 1;
                        }
                        continue;
                    }
                    let mut element = Map::new();
                    element.insert("prov:type".into(), Json::String(v.type_name.to_string()));
                    attrs_into(&mut element, &v.attrs);
                    out_section.element(&mut w, &qualified(&v.ext_id), element)?;
                    report.vertices += 1;
                    tick(&report);
                }
                out_section.close(&mut w)?;
            }
            let mut sections: Vec<&str> = Vec::new();
            for relation in [
                ProvRelation::Used,
                ProvRelation::WasGeneratedBy,
                ProvRelation::WasInformedBy,
                ProvRelation::WasInfluencedBy,
                ProvRelation::WasAssociatedWith,
                ProvRelation::WasDerivedFrom,
            ] {
                let Some((section, sender, receiver)) = prov_section(relation) else {
                    continue;
                };
                if sections.contains(&section) {
                    continue;
                }
                sections.push(section);
                let mut out_section = JsonSection::new(section);
                for e in chosen.edges(store) {
                    let e = e?;
                    if prov_section(e.relation).map(|s| s.0) != Some(section) {
                        continue;
                    }
                    let mut element = Map::new();
                    element.insert("prov:type".into(), Json::String(e.type_name.to_string()));
                    element.insert(
                        sender.into(),
                        Json::String(qualified(&ext_of(store, e.src)?)),
                    );
                    element.insert(
                        receiver.into(),
                        Json::String(qualified(&ext_of(store, e.dst)?)),
                    );
                    attrs_into(&mut element, &e.attrs);
                    out_section.element(&mut w, &qualified(&e.ext_id), element)?;
                    report.edges += 1;
                    tick(&report);
                }
                out_section.close(&mut w)?;
            }
            w.write_all(b"}\n").map_err(io)?;
        }
        ExportFormat::Spade => {
            for v in chosen.vertices(store) {
                let v = v?;
                let kind = match v.class {
                    ProvClass::Activity => "Activity",
                    ProvClass::Entity => "Entity",
                    ProvClass::Agent => "Agent",
                    ProvClass::Unknown => {
                        report.stubs_skipped += 1;
                        continue;
                    }
                };
                let mut annotations = Map::new();
                annotations.insert("object_type".into(), Json::String(v.type_name.to_string()));
                attrs_into(&mut annotations, &v.attrs);
                let record = serde_json::json!({
                    "type": kind,
                    "id": v.ext_id.to_string(),
                    "annotations": annotations,
                });
                writeln!(w, "{record}").map_err(io)?;
                report.vertices += 1;
                tick(&report);
            }
            for e in chosen.edges(store) {
                let e = e?;
                let mut annotations = Map::new();
                annotations.insert("id".into(), Json::String(e.ext_id.to_string()));
                annotations.insert(
                    "relation_type".into(),
                    Json::String(e.type_name.to_string()),
                );
                attrs_into(&mut annotations, &e.attrs);
                // SPADE's `from` is the receiver (effect), `to` the sender (cause).
                let record = serde_json::json!({
                    "type": spade_type(e.relation),
                    "from": ext_of(store, e.dst)?.to_string(),
                    "to": ext_of(store, e.src)?.to_string(),
                    "annotations": annotations,
                });
                writeln!(w, "{record}").map_err(io)?;
                report.edges += 1;
                tick(&report);
            }
        }
    }
    w.flush().map_err(io)?;
    report.bytes = w.bytes;
    progress(report.vertices + report.edges);
    Ok(report)
}

/// One section of a PROV-JSON document (`"activity": {...}`), written as its elements come:
/// opened at its first element, so an empty section is left out.
struct JsonSection {
    name: &'static str,
    opened: bool,
}

impl JsonSection {
    fn new(name: &'static str) -> JsonSection {
        JsonSection {
            name,
            opened: false,
        }
    }

    fn element(&mut self, w: &mut impl Write, key: &str, element: Map<String, Json>) -> Result<()> {
        if !self.opened {
            write!(w, ",\"{}\":{{", self.name).map_err(io)?;
            self.opened = true;
        } else {
            w.write_all(b",").map_err(io)?;
        }
        let key = Json::String(key.to_owned());
        write!(w, "{key}:{}", Json::Object(element)).map_err(io)
    }

    fn close(self, w: &mut impl Write) -> Result<()> {
        if self.opened {
            w.write_all(b"}").map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{Simulation, SimulationOptions};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    /// A small archive of a simulated fleet, shared by the tests (read only).
    struct Archive {
        _dir: tempfile::TempDir,
        db: crate::Database,
        vertices: Vec<u64>,
        edges: Vec<u64>,
    }

    fn archive() -> &'static Archive {
        static ARCHIVE: OnceLock<Archive> = OnceLock::new();
        ARCHIVE.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let db = crate::Database::open(dir.path()).unwrap();
            let options = SimulationOptions {
                seed: 7,
                machines: 2,
                documents_per_machine: 6,
                records_per_document: 30,
            };
            for doc in Simulation::new(&options) {
                db.ingest_json(doc.json.into_bytes()).unwrap();
            }
            let store = db.store();
            let vertices = store.scan_vertices().map(|v| v.unwrap().id.0).collect();
            let edges = store.scan_edges().map(|e| e.unwrap().id.0).collect();
            Archive {
                _dir: dir,
                db,
                vertices,
                edges,
            }
        })
    }

    /// The bytes and report of an export of `selection`, read by `reading`.
    fn written(
        selection: &ExportSelection,
        format: ExportFormat,
        reading: Reading,
    ) -> (Vec<u8>, ExportReport) {
        let store = archive().db.store();
        let mut chosen = choose(store, selection).unwrap();
        chosen.reading = reading;
        let mut out = Vec::new();
        let report = write_chosen(store, &chosen, format, &mut out, &mut |_| {}).unwrap();
        (out, report)
    }

    fn assert_look_up_writes_what_a_scan_writes(selection: &ExportSelection) {
        for format in [ExportFormat::ProvJson, ExportFormat::Spade] {
            let scanned = written(selection, format, Reading::Scan);
            let looked_up = written(selection, format, Reading::LookUp);
            assert_eq!(
                String::from_utf8_lossy(&looked_up.0),
                String::from_utf8_lossy(&scanned.0),
                "{format:?} of {selection:?}"
            );
            assert_eq!(looked_up.1, scanned.1, "{format:?} of {selection:?}");
        }
    }

    #[test]
    fn a_selection_by_ids_is_looked_up() {
        assert_eq!(
            choose(
                archive().db.store(),
                &ExportSelection::Ids {
                    vertices: vec![],
                    edges: vec![]
                }
            )
            .unwrap()
            .reading,
            Reading::LookUp
        );
        assert_eq!(
            choose(archive().db.store(), &ExportSelection::All)
                .unwrap()
                .reading,
            Reading::Scan
        );
    }

    #[test]
    fn looking_ids_up_writes_the_bytes_of_a_full_scan() {
        let a = archive();
        assert!(
            a.vertices.len() > 50 && a.edges.len() > 50,
            "{} {}",
            a.vertices.len(),
            a.edges.len()
        );
        let missing = a.vertices.iter().chain(&a.edges).max().unwrap() + 1;
        let every_third: Vec<u64> = a.vertices.iter().copied().step_by(3).collect();
        let every_fifth_edge: Vec<u64> = a.edges.iter().copied().step_by(5).collect();
        for selection in [
            ExportSelection::Ids {
                vertices: vec![],
                edges: vec![],
            },
            ExportSelection::Ids {
                vertices: a.vertices.clone(),
                edges: a.edges.clone(),
            },
            // Unordered, repeated and unknown ids.
            ExportSelection::Ids {
                vertices: every_third
                    .iter()
                    .rev()
                    .copied()
                    .chain([missing, every_third[0]])
                    .collect(),
                edges: vec![],
            },
            // Edges bring their ends.
            ExportSelection::Ids {
                vertices: vec![],
                edges: every_fifth_edge.clone(),
            },
            ExportSelection::Ids {
                vertices: every_third,
                edges: every_fifth_edge.into_iter().chain([missing]).collect(),
            },
        ] {
            assert_look_up_writes_what_a_scan_writes(&selection);
        }
        // The whole selection is the whole archive.
        let (everything, _) = written(
            &ExportSelection::Ids {
                vertices: a.vertices.clone(),
                edges: a.edges.clone(),
            },
            ExportFormat::ProvJson,
            Reading::LookUp,
        );
        assert_eq!(
            everything,
            written(&ExportSelection::All, ExportFormat::ProvJson, Reading::Scan).0
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn any_selection_of_ids_writes_the_bytes_of_a_full_scan(
            vertices in (0usize..40).prop_flat_map(|n| proptest::sample::subsequence(archive().vertices.clone(), n.min(archive().vertices.len()))),
            edges in (0usize..40).prop_flat_map(|n| proptest::sample::subsequence(archive().edges.clone(), n.min(archive().edges.len()))),
            stray in proptest::collection::vec(0u64..2_000, 0..4),
        ) {
            let selection = ExportSelection::Ids {
                vertices: vertices.into_iter().chain(stray.iter().copied()).collect(),
                edges: edges.into_iter().chain(stray).collect(),
            };
            assert_look_up_writes_what_a_scan_writes(&selection);
        }
    }
}
