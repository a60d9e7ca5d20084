//! Anomaly detection at ingest: each batch's new edges feed the machines' streams (see
//! [`crate::anomaly`]); an interval that departs from the machine's model becomes an alert
//! with rule `anomaly`, in the same write as the batch that closed it. Consecutive anomalous
//! intervals of a machine are one alert, raised again (its count grows).

use std::collections::HashMap;

use provdb_storage::{EdgeInput, ExternalId, RecordBatch, Store};

use super::alerts::{self, Alert, PathEdge, PathVertex};
use super::{Detected, Raised};
use crate::anomaly::{EdgeEvent, Scored, Scorer, StoredModel};
use crate::Result;

/// The rule name of anomaly alerts.
pub const ANOMALY_RULE: &str = "anomaly";

/// The scorer and each machine's open anomaly (the alert its current anomalous run raised).
#[derive(Debug)]
pub(crate) struct AnomalyState {
    scorer: Scorer,
    open: HashMap<u32, Vec<u8>>,
}

impl AnomalyState {
    pub(crate) fn new(models: Vec<StoredModel>) -> AnomalyState {
        AnomalyState {
            scorer: Scorer::new(models),
            open: HashMap::new(),
        }
    }

    /// Forgets the streams (after a failed write); the models stay.
    pub(crate) fn reset(&mut self) {
        self.scorer.reset();
        self.open.clear();
    }

    /// Feeds a batch's new edges (in causal order) and raises alerts for anomalous
    /// intervals.
    pub(crate) fn process(
        &mut self,
        raised: &mut Raised,
        store: &Store,
        batch: &RecordBatch,
        order: &[&EdgeInput],
        detected: &mut Detected,
    ) -> Result<()> {
        let types: HashMap<&ExternalId, &str> = batch
            .vertices
            .iter()
            .map(|v| (&v.ext_id, v.type_name.as_str()))
            .collect();
        for edge in order {
            let Some(machine) = edge.placement.machine else {
                continue;
            };
            let event = EdgeEvent {
                edge: &edge.ext_id,
                edge_type: &edge.type_name,
                src: &edge.src.ext_id,
                src_type: type_of(&types, &edge.src),
                dst: &edge.dst.ext_id,
                dst_type: type_of(&types, &edge.dst),
                time: edge.placement.time,
            };
            if let Some(scored) = self.scorer.edge(machine, &event) {
                self.judge(raised, store, scored, detected)?;
            }
        }
        Ok(())
    }

    fn judge(
        &mut self,
        raised: &mut Raised,
        store: &Store,
        scored: Scored,
        detected: &mut Detected,
    ) -> Result<()> {
        if !scored.assessment.is_anomalous() {
            self.open.remove(&scored.machine);
            return Ok(());
        }
        // Consecutive anomalous intervals of a machine are one alert: the open one, if any.
        if let Some(key) = self.open.get(&scored.machine) {
            if let Some(mut again) = raised.existing(store, key)? {
                again.count += 1;
                again.last_seen = scored.snapshot.until.or(again.last_seen);
                raised.record(key.clone(), again, false, detected);
                return Ok(());
            }
        }
        let anchor = format!(
            "{}/{}/{}",
            scored.machine, scored.model, scored.snapshot.index
        );
        let key = alerts::dedup_key(ANOMALY_RULE, &anchor);
        let alert = new_alert(raised.allocate_id(store)?, &scored);
        self.open.insert(scored.machine, key.clone());
        raised.record(key, alert, true, detected);
        Ok(())
    }
}

/// A vertex's type: from the batch's definition, else the edge's hint.
fn type_of<'a>(
    types: &HashMap<&ExternalId, &'a str>,
    end: &'a provdb_storage::EndpointInput,
) -> Option<&'a str> {
    types.get(&end.ext_id).copied().or(end.type_hint.as_deref())
}

/// The alert of an anomalous interval: score, model and interval in the summary; the path
/// is the interval's edges whose labels the model never saw, in causal order.
pub(crate) fn new_alert(id: u64, scored: &Scored) -> Alert {
    let (path, edges) = explaining_path(scored);
    let a = &scored.assessment;
    let s = &scored.snapshot;
    let time = s.novel.iter().find_map(|e| e.time).or(s.from);
    Alert {
        id,
        rule: ANOMALY_RULE.to_owned(),
        severity: if a.score >= 2.0 { "high" } else { "medium" }.to_owned(),
        machine: Some(scored.machine),
        time,
        summary: summary(scored),
        path,
        edges,
        count: 1,
        last_seen: s.until.or(time),
    }
}

/// `machine 7 departs from model fleet v1 in interval 3 (up to edge 1000): score 2.41
/// (sketch: distance 0.530 to cluster 0, threshold 0.620; novelty 0.080, threshold 0.033);
/// 12 edges with labels never seen in training (accept, exec, receive)`.
pub(crate) fn summary(scored: &Scored) -> String {
    let a = &scored.assessment;
    let s = &scored.snapshot;
    let mut types: Vec<&str> = s.novel.iter().map(|e| e.edge_type.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    format!(
        "machine {} departs from model {} in interval {} (up to edge {}): score {:.2} \
         (sketch: distance {:.3} to cluster {}, threshold {:.3}; novelty {:.3}, threshold \
         {:.3}); {} edges with labels never seen in training{}",
        scored.machine,
        scored.model,
        s.index,
        s.edges,
        a.score,
        a.distance,
        a.cluster,
        a.threshold,
        a.novelty,
        a.novelty_threshold,
        s.novel_edges,
        if types.is_empty() {
            String::new()
        } else {
            format!(" ({})", types.join(", "))
        }
    )
}

fn explaining_path(scored: &Scored) -> (Vec<PathVertex>, Vec<PathEdge>) {
    let mut path: Vec<PathVertex> = Vec::new();
    let mut edges: Vec<PathEdge> = Vec::new();
    for e in &scored.snapshot.novel {
        for (id, ty) in [&e.src, &e.dst] {
            if !path.iter().any(|v| v.id == *id) {
                path.push(PathVertex {
                    id: id.clone(),
                    type_name: ty.clone(),
                    name: None,
                });
            }
        }
        edges.push(PathEdge {
            id: e.edge.clone(),
            type_name: e.edge_type.clone(),
            from: e.src.0.clone(),
            to: e.dst.0.clone(),
        });
    }
    (path, edges)
}
