//! Detection at ingest: rules evaluated on each committed batch's new edges, alerts that
//! carry their causal path, stored in the same atomic write as the batch.
//!
//! ```text
//! batch --prepare_write--> new edges --Detector::process--> facts puts + alerts --> same write
//! ```
//!
//! Evaluation is incremental: each new edge is matched against the rules whose completing
//! edge type it has, with the facts of its two ends (type, path, program, uid, remote end,
//! tags). History lives in SLEUTH-style tags (trust: network / downloaded; confidentiality:
//! secret; role: server), propagated along each edge in O(1) and persisted, so no rule
//! traverses the archive. Re-ingesting data evaluates nothing twice: only edges the write
//! adds are looked at, and an alert is deduplicated by rule and object.
//!
//! ```
//! use provdb::detect::RuleSet;
//! let pack = RuleSet::default_pack();
//! let names: Vec<&str> = pack.rules().iter().map(|r| r.name.as_str()).collect();
//! assert!(names.contains(&"exfiltration") && names.contains(&"sensitive-link"));
//! ```

mod alerts;
mod anomaly_alerts;
mod facts;
mod pattern;
mod rules;

use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// The facts cache is keyed by external ids from (possibly compromised) machines and hashed
/// five times per edge: foldhash, seeded per process as the writer's maps are, where SipHash
/// was 7% of the detector thread.
type FactsCache = foldhash::HashMap<ExternalId, (Facts, u64)>;

use parking_lot::Mutex;
use provdb_storage::{EdgeInput, ExternalId, RecordBatch, SidePut, Store};

pub use alerts::{Alert, AlertFilter, PathEdge, PathVertex};
pub use anomaly_alerts::ANOMALY_RULE;
pub use rules::{
    parse_duration, Anchor, Rule, RuleError, RuleSet, RulesOptions, Severity, SharedRules,
    DEFAULT_PACK, DEFAULT_PACK_NAME,
};

use anomaly_alerts::AnomalyState;
use facts::Facts;
use pattern::{End, Subject};

use crate::side_tables::{ALERTS, DETECT_FACTS};
use crate::Result;

/// Facts kept in memory; beyond it, those not written by the last batches are dropped (they
/// are on disk). Debug builds take `PROVDB_TEST_FACTS_CACHE_LIMIT` instead, so that tests see
/// the cache dropped between the batches of a small import.
fn facts_cache_limit() -> usize {
    const DEFAULT: usize = 1 << 20;
    #[cfg(debug_assertions)]
    {
        static TEST_LIMIT: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
        if let Some(limit) = *TEST_LIMIT.get_or_init(|| {
            std::env::var("PROVDB_TEST_FACTS_CACHE_LIMIT")
                .ok()
                .and_then(|v| v.parse().ok())
        }) {
            return limit;
        }
    }
    DEFAULT
}
/// Alerts kept in memory for deduplication before the table is asked.
const ALERT_CACHE_LIMIT: usize = 1 << 16;
/// Batches whose writes may still be uncommitted when the next is evaluated (one waits for
/// the committer, one commits; with margin): their facts must stay in memory.
const BATCHES_IN_FLIGHT: u64 = 4;

/// The detector of a database: its rules, its anomaly models, and what it knows of the
/// vertices it has seen. One per [`crate::Database`]; every write path (import, serve, the
/// library's writes) runs its batches through it.
pub struct Detector {
    rules: SharedRules,
    state: Mutex<State>,
    /// Anomaly scoring, when the archive has models.
    anomaly: Option<Mutex<AnomalyState>>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("rules", &self.rules.rules().len())
            .field("anomaly", &self.anomaly.is_some())
            .finish()
    }
}

#[derive(Default)]
struct State {
    batch: u64,
    /// Facts by vertex, with the number of the batch that last changed them.
    facts: FactsCache,
    /// Whether `facts` holds every vertex that has facts in the archive: the facts table was
    /// empty when this state began (facts are written by detection alone) and nothing has
    /// been evicted since. A vertex it lacks then has no facts, and is not looked up (on a
    /// new archive that look-up, always a miss, was 12% of the detector thread). `None`
    /// until the first batch looks at the table.
    facts_complete: Option<bool>,
    raised: Raised,
}

/// Alerts raised by this process, for deduplication before the table is asked.
#[derive(Default)]
struct Raised {
    next_alert: Option<u64>,
    alerts: HashMap<Vec<u8>, Alert>,
}

impl Raised {
    /// The alert deduplicated under `key`: raised earlier in this run (perhaps in a write not
    /// yet committed), else stored in the archive.
    fn existing(&self, store: &Store, key: &[u8]) -> Result<Option<Alert>> {
        if let Some(a) = self.alerts.get(key) {
            return Ok(Some(a.clone()));
        }
        match alerts::id_of(store, key)? {
            Some(id) => alerts::get(store, id),
            None => Ok(None),
        }
    }

    /// The id of the next new alert (ids of writes not yet committed included).
    fn allocate_id(&mut self, store: &Store) -> Result<u64> {
        let id = match self.next_alert {
            Some(n) => n,
            None => alerts::next_id(store)?,
        };
        self.next_alert = Some(id + 1);
        Ok(id)
    }

    /// Puts `alert` (new, or raised again) under its deduplication `key` into the write:
    /// the key's entry when new, and the alert itself.
    fn record(&mut self, key: Vec<u8>, alert: Alert, new: bool, detected: &mut Detected) {
        if new {
            detected.puts.push(SidePut {
                table: ALERTS,
                key: key.clone(),
                value: alert.id.to_be_bytes().to_vec(),
            });
        }
        detected.puts.push(alerts::put(&alert));
        self.alerts.insert(key, alert.clone());
        detected.alerts.push(alert);
    }
}

/// What detection adds to one write.
#[derive(Debug, Default)]
pub(crate) struct Detected {
    /// Facts and alerts to write with the batch.
    pub(crate) puts: Vec<SidePut>,
    /// Alerts raised or raised again by the batch.
    pub(crate) alerts: Vec<Alert>,
}

impl Detector {
    /// A detector with these rules.
    pub fn new(rules: SharedRules) -> Detector {
        Detector::with_models(rules, Vec::new())
    }

    /// A detector with these rules that also scores machines against anomaly models (the
    /// latest of each scope; none: no anomaly scoring).
    pub fn with_models(rules: SharedRules, models: Vec<crate::anomaly::StoredModel>) -> Detector {
        Detector {
            rules,
            state: Mutex::new(State::default()),
            anomaly: (!models.is_empty()).then(|| Mutex::new(AnomalyState::new(models))),
        }
    }

    /// True when anomaly models score this database's writes.
    pub fn scores_anomalies(&self) -> bool {
        self.anomaly.is_some()
    }

    /// The rules in force.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Forgets what is only in memory (after a write failed: the disk is the truth again).
    pub(crate) fn reset(&self) {
        *self.state.lock() = State::default();
        if let Some(a) = &self.anomaly {
            a.lock().reset();
        }
    }

    /// Evaluates a batch's new edges (`new_edges`: indices into `batch.edges`, as the
    /// prepared write says), updating facts and raising alerts.
    pub(crate) fn process(
        &self,
        store: &Store,
        batch: &RecordBatch,
        new_edges: &[usize],
    ) -> Result<Detected> {
        let mut state = self.state.lock();
        let state = &mut *state;
        state.batch += 1;
        let mut detected = Detected::default();
        // Kernel relation ids grow with time on a machine: they give the causal order of
        // edges that a document groups by PROV section.
        let mut order: Vec<&EdgeInput> = new_edges
            .iter()
            .filter_map(|i| batch.edges.get(*i))
            .collect();
        if order.iter().all(|e| e.placement.object_id.is_some()) {
            order.sort_by_key(|e| (e.placement.machine, e.placement.boot, e.placement.object_id));
        }
        if !self.rules.rules().is_empty() {
            self.apply_rules(state, store, batch, &order, &mut detected)?;
        }
        if let Some(anomaly) = &self.anomaly {
            anomaly
                .lock()
                .process(&mut state.raised, store, batch, &order, &mut detected)?;
        }
        if let Some(next) = state.raised.next_alert {
            if !detected.alerts.is_empty() {
                detected.puts.push(SidePut {
                    table: ALERTS,
                    key: alerts::NEXT_ID_KEY.to_vec(),
                    value: next.to_be_bytes().to_vec(),
                });
            }
        }
        if state.raised.alerts.len() > ALERT_CACHE_LIMIT {
            // Alerts are written with their batch; only the in-flight ones must stay.
            state.raised.alerts.clear();
        }
        Ok(detected)
    }

    /// Evaluates the rules on a batch's new edges (in causal order): facts, then alerts.
    fn apply_rules(
        &self,
        state: &mut State,
        store: &Store,
        batch: &RecordBatch,
        order: &[&EdgeInput],
        detected: &mut Detected,
    ) -> Result<()> {
        let now = state.batch;
        let complete = match state.facts_complete {
            Some(complete) => complete,
            None => {
                let empty = match store.side_scan(DETECT_FACTS, &[]).next() {
                    None => true,
                    Some(Ok(_)) => false,
                    Some(Err(e)) => return Err(e.into()),
                };
                *state.facts_complete.insert(empty)
            }
        };
        let known = |id: &ExternalId| -> Result<Facts> {
            if complete {
                return Ok(Facts::default());
            }
            Ok(store
                .side_get(DETECT_FACTS, &facts::key(id))?
                .and_then(|bytes| facts::decode(&bytes))
                .unwrap_or_default())
        };
        // Vertices whose facts this batch changed (written with it).
        let mut dirty: Vec<ExternalId> = Vec::new();
        for v in &batch.vertices {
            let entry = cached(&mut state.facts, known, &v.ext_id)?;
            entry.0.define(v);
            mark(entry, now, &v.ext_id, &mut dirty);
        }
        let secrets = self.rules.sets.names.get("secrets").copied();
        let sets = &self.rules.sets;
        let is_secret = |path: &str| {
            secrets
                .and_then(|i| sets.entries.get(i))
                .is_some_and(|(_, _, re)| re.is_match(path))
        };
        for edge in order.iter().copied() {
            cached(&mut state.facts, known, &edge.src.ext_id)?;
            cached(&mut state.facts, known, &edge.dst.ext_id)?;
            // The receiver's facts are taken out and changed in place: cloning them per edge
            // (strings, tags, program paths) was most of detection's cost. Taken, not
            // removed, so that putting them back needs no copy of the key.
            let Some((mut dst, changed_in)) = state
                .facts
                .get_mut(&edge.dst.ext_id)
                .map(|(f, b)| (std::mem::take(f), *b))
            else {
                continue;
            };
            let self_loop;
            let src = if edge.src.ext_id == edge.dst.ext_id {
                self_loop = dst.clone();
                &self_loop
            } else {
                match state.facts.get(&edge.src.ext_id) {
                    Some((f, _)) => f,
                    None => &Facts::default(),
                }
            };
            let matched = self.matching(edge, src, &dst);
            // The receiver as it was, for the alerts of this edge (rare).
            let before = (!matched.is_empty()).then(|| dst.clone());
            let changed = facts::propagate(edge, src, &mut dst, &is_secret);
            if let Some(before) = &before {
                for (rule, pattern) in matched {
                    self.raise_into(
                        &mut state.raised,
                        store,
                        (rule, pattern),
                        edge,
                        (src, before, &dst),
                        detected,
                    )?;
                }
            }
            let mut entry = (dst, changed_in);
            if changed {
                mark(&mut entry, now, &edge.dst.ext_id, &mut dirty);
            }
            match state.facts.get_mut(&edge.dst.ext_id) {
                Some(slot) => *slot = entry,
                None => return Err(crate::Error::StageFailed("detection cache")),
            }
        }
        for id in &dirty {
            if let Some((f, _)) = state.facts.get(id) {
                detected.puts.push(SidePut {
                    table: DETECT_FACTS,
                    key: facts::key(id),
                    value: facts::encode(f),
                });
            }
        }
        if state.facts.len() > facts_cache_limit() {
            state.facts.retain(|_, (_, b)| *b + BATCHES_IN_FLIGHT > now);
            state.facts_complete = Some(false);
        }
        Ok(())
    }

    /// The rules (rule index, pattern index) the edge completes, each rule once, judged on
    /// the facts of its ends before it.
    fn matching<'r>(
        &'r self,
        edge: &EdgeInput,
        src: &Facts,
        dst_before: &Facts,
    ) -> Vec<(&'r Rule, &'r pattern::Pattern)> {
        let candidates = self
            .rules
            .by_edge_type
            .get(edge.type_name.as_str())
            .into_iter()
            .chain(self.rules.by_edge_type.get(""))
            .flatten();
        let mut fired: Vec<(&Rule, &pattern::Pattern)> = Vec::new();
        for (ri, pi) in candidates {
            let Some(rule) = self.rules.rules().get(*ri) else {
                continue;
            };
            if fired.iter().any(|(r, _)| std::ptr::eq(*r, rule)) {
                continue;
            }
            let Some(p) = rule.compiled.get(*pi) else {
                continue;
            };
            let subject = Subject {
                sender: src,
                receiver: dst_before,
                edge_type: &edge.type_name,
                time: edge.placement.time,
                window: rule.window,
            };
            if p.matches(&subject, &self.rules.sets) {
                fired.push((rule, p));
            }
        }
        fired
    }

    /// Raises (or raises again) a rule's alert and adds it to the batch's output.
    fn raise_into(
        &self,
        state: &mut Raised,
        store: &Store,
        (rule, p): (&Rule, &pattern::Pattern),
        edge: &EdgeInput,
        (src, dst_before, dst_after): (&Facts, &Facts, &Facts),
        detected: &mut Detected,
    ) -> Result<()> {
        let (anchor_facts, anchor_id) = match rule.anchor {
            Anchor::Sender => (src, &edge.src.ext_id),
            Anchor::Receiver => (dst_before, &edge.dst.ext_id),
        };
        let anchor = match (anchor_facts.machine, anchor_facts.boot, anchor_facts.object) {
            (Some(m), Some(b), Some(o)) => format!("{m}/{b}/{o}"),
            _ => anchor_id.to_string(),
        };
        let key = alerts::dedup_key(&rule.name, &anchor);
        let time = edge.placement.time;
        if let Some(mut again) = state.existing(store, &key)? {
            again.count += 1;
            again.last_seen = time.or(again.last_seen);
            state.record(key, again, false, detected);
            return Ok(());
        }
        let (path, edges) = causal_path(p, edge, src, dst_before, dst_after);
        let alert = Alert {
            id: state.allocate_id(store)?,
            rule: rule.name.clone(),
            severity: rule.severity.as_str().to_owned(),
            machine: edge
                .placement
                .machine
                .or(src.machine)
                .or(dst_before.machine),
            time,
            summary: summary(rule, p, edge, src, dst_after),
            path,
            edges,
            count: 1,
            last_seen: time,
        };
        state.record(key, alert, true, detected);
        Ok(())
    }
}

/// A vertex's cached facts, loaded on first use: from the table, else nothing known.
fn cached<'c>(
    cache: &'c mut FactsCache,
    known: impl Fn(&ExternalId) -> Result<Facts>,
    id: &ExternalId,
) -> Result<&'c mut (Facts, u64)> {
    // A hit must not clone the key (the common case); a miss loads and inserts.
    if !cache.contains_key(id) {
        let f = known(id)?;
        return Ok(match cache.entry(id.clone()) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert((f, 0)),
        });
    }
    cache
        .get_mut(id)
        .ok_or(crate::Error::StageFailed("detection cache"))
}

/// Notes that the batch `now` changed a vertex's facts (once per batch).
fn mark(entry: &mut (Facts, u64), now: u64, id: &ExternalId, dirty: &mut Vec<ExternalId>) {
    if entry.1 != now {
        entry.1 = now;
        dirty.push(id.clone());
    }
}

/// The causal path of an alert: the paths of the tags its rule read, then the completing
/// edge; each vertex and edge once, in order.
fn causal_path(
    p: &pattern::Pattern,
    edge: &EdgeInput,
    src: &Facts,
    dst_before: &Facts,
    dst_after: &Facts,
) -> (Vec<PathVertex>, Vec<PathEdge>) {
    let mut path: Vec<PathVertex> = Vec::new();
    let mut edges: Vec<PathEdge> = Vec::new();
    let add_vertex = |path: &mut Vec<PathVertex>, v: PathVertex| {
        if !path.iter().any(|x| x.id == v.id) {
            path.push(v);
        }
    };
    // How the processes at either end came to run their programs, then the tags' paths.
    let tag_paths = p.tags_read.iter().filter_map(|(end, kind)| {
        let f = match end {
            End::Sender => src,
            End::Receiver => dst_before,
            End::Edge => return None,
        };
        f.tag(*kind).map(|t| &t.path)
    });
    let paths = [&src.exe_path, &dst_before.exe_path]
        .into_iter()
        .chain(tag_paths);
    for steps in paths {
        for step in steps {
            add_vertex(
                &mut path,
                PathVertex {
                    id: step.vertex.clone(),
                    type_name: step.vertex_type.clone(),
                    name: step.name.clone(),
                },
            );
            if let Some((id, ty, from)) = &step.via {
                if !edges.iter().any(|e| e.id == *id) {
                    edges.push(PathEdge {
                        id: id.clone(),
                        type_name: ty.clone(),
                        from: from.clone(),
                        to: step.vertex.clone(),
                    });
                }
            }
        }
    }
    let vertex = |id: &ExternalId, f: &Facts| PathVertex {
        id: id.to_string(),
        type_name: f.ty.clone(),
        name: f.display_name(),
    };
    add_vertex(&mut path, vertex(&edge.src.ext_id, src));
    add_vertex(&mut path, vertex(&edge.dst.ext_id, dst_after));
    edges.push(PathEdge {
        id: edge.ext_id.to_string(),
        type_name: edge.type_name.clone(),
        from: edge.src.ext_id.to_string(),
        to: edge.dst.ext_id.to_string(),
    });
    (path, edges)
}

/// The rule's summary with its placeholders filled (the sender as it was, the receiver as
/// the edge left it), or a default sentence.
fn summary(
    rule: &Rule,
    p: &pattern::Pattern,
    edge: &EdgeInput,
    src: &Facts,
    dst: &Facts,
) -> String {
    let describe = |f: &Facts| match f.display_name() {
        Some(n) => format!("{} {n}", if f.ty.is_empty() { "vertex" } else { &f.ty }),
        None => {
            if f.ty.is_empty() {
                "vertex".to_owned()
            } else {
                f.ty.clone()
            }
        }
    };
    let Some(template) = &rule.summary else {
        return format!(
            "{}: {} -{}-> {}",
            rule.name,
            describe(src),
            edge.type_name,
            describe(dst)
        );
    };
    let mut out = template.clone();
    for placeholder in rules::placeholders(template) {
        let Some((var, prop)) = placeholder.split_once('.') else {
            continue;
        };
        let f = match p.vars.iter().find(|(v, _)| v == var).map(|(_, e)| *e) {
            Some(End::Sender) => src,
            Some(End::Receiver) => dst,
            _ => continue,
        };
        let text = pattern::display(f, prop);
        out = out.replace(
            &format!("{{{placeholder}}}"),
            text.as_deref().unwrap_or("(unknown)"),
        );
    }
    out
}

/// Alerts of an archive that pass the filter, in id order.
pub(crate) fn list_alerts(store: &Store, filter: &AlertFilter) -> Result<Vec<Alert>> {
    alerts::list(store, filter)
}

/// One alert by id.
pub(crate) fn get_alert(store: &Store, id: u64) -> Result<Option<Alert>> {
    alerts::get(store, id)
}
