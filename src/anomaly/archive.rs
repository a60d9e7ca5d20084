//! Models in the archive ([`crate::side_tables::ANOMALY_MODELS`]), versioned, and replaying an
//! archive's edges per machine in causal order (training and offline scoring).
//!
//! Keys of the table (this module owns their format): scope (`f` fleet, `m` machine), the
//! machine id (4 bytes, big-endian; 0 for the fleet), the model's version (4 bytes,
//! big-endian) -> the encoded model. Training never overwrites: it adds the next version,
//! and scoring uses the latest.

use std::collections::HashMap;
use std::sync::Arc;

use provdb_storage::{ExternalId, SidePut, Store, VertexId};

use super::codec::{self, ModelDecodeError};
use super::model::Model;
use super::stream::EdgeEvent;
use crate::side_tables::ANOMALY_MODELS;
use crate::Result;

/// Which machines a model describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelScope {
    /// Every machine without a model of its own.
    Fleet,
    /// One machine.
    Machine(u32),
}

impl std::fmt::Display for ModelScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelScope::Fleet => f.write_str("fleet"),
            ModelScope::Machine(m) => write!(f, "machine {m}"),
        }
    }
}

impl ModelScope {
    fn prefix(self) -> [u8; 5] {
        let (tag, id) = match self {
            ModelScope::Fleet => (b'f', 0u32),
            ModelScope::Machine(m) => (b'm', m),
        };
        let mut k = [0u8; 5];
        k[0] = tag;
        k[1..].copy_from_slice(&id.to_be_bytes());
        k
    }

    fn from_key(key: &[u8]) -> Option<(ModelScope, u32)> {
        let (tag, rest) = key.split_first()?;
        let id: [u8; 4] = rest.get(..4)?.try_into().ok()?;
        let version: [u8; 4] = rest.get(4..8)?.try_into().ok()?;
        let scope = match tag {
            b'f' => ModelScope::Fleet,
            b'm' => ModelScope::Machine(u32::from_be_bytes(id)),
            _ => return None,
        };
        Some((scope, u32::from_be_bytes(version)))
    }
}

/// A stored model and its identity.
#[derive(Debug, Clone)]
pub struct StoredModel {
    /// What it describes.
    pub scope: ModelScope,
    /// Its version (1, 2, ... per scope).
    pub version: u32,
    /// The model.
    pub model: Model,
}

impl StoredModel {
    /// `fleet v2`, `machine 7 v1`.
    pub fn name(&self) -> String {
        format!("{} v{}", self.scope, self.version)
    }
}

fn key(scope: ModelScope, version: u32) -> Vec<u8> {
    let mut k = scope.prefix().to_vec();
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// Every version of every model, in key order (an undecodable one is an error).
pub fn list_models(store: &Store) -> Result<Vec<StoredModel>> {
    let mut out = Vec::new();
    for item in store.side_scan(ANOMALY_MODELS, &[]) {
        let (k, v) = item?;
        let Some((scope, version)) = ModelScope::from_key(&k) else {
            continue;
        };
        let model = codec::decode(&v).map_err(|e| corrupt(scope, version, e))?;
        out.push(StoredModel {
            scope,
            version,
            model,
        });
    }
    Ok(out)
}

fn corrupt(scope: ModelScope, version: u32, e: ModelDecodeError) -> crate::Error {
    crate::Error::CorruptModel {
        model: format!("{scope} v{version}"),
        source: e,
    }
}

/// The latest version of each scope's model (only those are decoded: a damaged older
/// version does not stop scoring).
pub fn latest_models(store: &Store) -> Result<HashMap<ModelScope, StoredModel>> {
    let mut latest: HashMap<ModelScope, (u32, Vec<u8>)> = HashMap::new();
    for item in store.side_scan(ANOMALY_MODELS, &[]) {
        let (k, v) = item?;
        if let Some((scope, version)) = ModelScope::from_key(&k) {
            // Key order: a later version of a scope comes after an earlier one.
            latest.insert(scope, (version, v.to_vec()));
        }
    }
    latest
        .into_iter()
        .map(|(scope, (version, bytes))| {
            let model = codec::decode(&bytes).map_err(|e| corrupt(scope, version, e))?;
            Ok((
                scope,
                StoredModel {
                    scope,
                    version,
                    model,
                },
            ))
        })
        .collect()
}

/// Stores a model as the next version of its scope; returns the version.
pub fn save_model(store: &Store, scope: ModelScope, model: &Model) -> Result<u32> {
    let prefix = scope.prefix();
    let mut version = 0u32;
    for item in store.side_scan(ANOMALY_MODELS, &prefix) {
        let (k, _) = item?;
        if !k.starts_with(&prefix) {
            break;
        }
        if let Some((_, v)) = ModelScope::from_key(&k) {
            version = version.max(v);
        }
    }
    let version = version.saturating_add(1);
    store.side_write(
        &[SidePut {
            table: ANOMALY_MODELS,
            key: key(scope, version),
            value: codec::encode(model),
        }],
        &[],
        provdb_storage::Durability::Sync,
    )?;
    Ok(version)
}

/// Which history to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    /// Only this machine's edges.
    pub machine: Option<u32>,
    /// Only edges at or after this time (Unix seconds); edges without a time are skipped
    /// when a bound is given.
    pub since: Option<i64>,
    /// Only edges at or before this time.
    pub until: Option<i64>,
}

impl ReplayFilter {
    fn accepts(&self, machine: u32, time: Option<i64>) -> bool {
        if self.machine.is_some_and(|m| m != machine) {
            return false;
        }
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        time.is_some_and(|t| self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u))
    }
}

/// Replays an archive's edges machine by machine (ascending id), each machine's in causal
/// order (boot, then kernel relation id, as detection orders a batch), calling `on_machine`
/// when a machine starts and `on_edge` per edge. Memory: the archive's vertex ids and types,
/// and the selected edges' keys.
pub fn replay(
    store: &Store,
    filter: &ReplayFilter,
    on_machine: &mut dyn FnMut(u32),
    on_edge: &mut dyn FnMut(u32, &EdgeEvent<'_>),
) -> Result<u64> {
    struct Key {
        boot: u32,
        object: u64,
        edge: u64,
    }
    let mut by_machine: HashMap<u32, Vec<Key>> = HashMap::new();
    for e in store.scan_edges() {
        let e = e?;
        let Some(machine) = e.placement.machine else {
            continue;
        };
        if !filter.accepts(machine, e.placement.time) {
            continue;
        }
        by_machine.entry(machine).or_default().push(Key {
            boot: e.placement.boot.unwrap_or(0),
            object: e.placement.object_id.unwrap_or(u64::MAX),
            edge: e.id.0,
        });
    }
    let mut machines: Vec<u32> = by_machine.keys().copied().collect();
    machines.sort_unstable();
    let mut vertices: HashMap<VertexId, (ExternalId, Arc<str>)> = HashMap::new();
    let mut count = 0u64;
    for machine in machines {
        let Some(mut keys) = by_machine.remove(&machine) else {
            continue;
        };
        keys.sort_unstable_by_key(|k| (k.boot, k.object, k.edge));
        on_machine(machine);
        for k in keys {
            let Some(edge) = store.edge(provdb_storage::EdgeId(k.edge))? else {
                continue;
            };
            for id in [edge.src, edge.dst] {
                if let std::collections::hash_map::Entry::Vacant(slot) = vertices.entry(id) {
                    if let Some(v) = store.vertex(id)? {
                        // A stub's type is not known yet.
                        let ty: Arc<str> = if v.stub { Arc::from("?") } else { v.type_name };
                        slot.insert((v.ext_id, ty));
                    }
                }
            }
            let (Some((src, src_type)), Some((dst, dst_type))) =
                (vertices.get(&edge.src), vertices.get(&edge.dst))
            else {
                continue;
            };
            on_edge(
                machine,
                &EdgeEvent {
                    edge: &edge.ext_id,
                    edge_type: &edge.type_name,
                    src,
                    src_type: Some(src_type),
                    dst,
                    dst_type: Some(dst_type),
                    time: edge.placement.time,
                },
            );
            count += 1;
        }
        vertices.clear();
    }
    Ok(count)
}
