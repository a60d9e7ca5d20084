//! One query over several archives (e.g. the archives of several `provdb serve` nodes that
//! split a fleet with an MQTT shared subscription), answered as if they were one.

use provdb_query::{Cursor, Datum, Limits, QueryResult, Row};

use crate::{Database, Result};

/// Runs `text` on every archive and merges the results: rows in the order of `dbs`; a
/// `count` (one row, column `count`) is summed. Every other step (`order by`, `limit`,
/// `dedup`, `return distinct`) applies within each archive: exact when no vertex is in two
/// archives, as when each machine's records go to one node. Vertex and edge references of the
/// rows' [`Row::vertices`]/[`Row::edges`] are internal ids of their own archive.
///
/// ```
/// let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
/// let doc = |id: &str| format!(r#"{{"activity":{{"cf:{id}":{{"prov:type":"task"}}}}}}"#).into_bytes();
/// let (da, db) = (provdb::Database::open(a.path())?, provdb::Database::open(b.path())?);
/// da.ingest_json(doc("AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA="))?;
/// db.ingest_json(doc("AQAAAAAAAEDEHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA="))?;
/// let limits = provdb::query::Limits::default();
/// let r = provdb::federation::query_all(&[&da, &db], "(t:task) | count", limits.clone())?;
/// assert_eq!(r.rows[0].values[0], provdb::query::Datum::Int(2));
/// let r = provdb::federation::query_all(&[&da, &db], "(t:task) | return t.id", limits)?;
/// assert_eq!(r.rows.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn query_all(dbs: &[&Database], text: &str, limits: Limits) -> Result<QueryResult> {
    let mut merged: Option<QueryResult> = None;
    for db in dbs {
        let result = Cursor::new(db.store(), text, limits.clone())?.collect_result()?;
        merged = Some(match merged {
            None => result,
            Some(mut all) => {
                if is_count(&all) && is_count(&result) {
                    let sum = count_of(&all).saturating_add(count_of(&result));
                    all.rows = vec![Row {
                        values: vec![Datum::Int(sum)],
                        vertices: Vec::new(),
                        edges: Vec::new(),
                    }];
                } else {
                    all.rows.extend(result.rows);
                }
                all.warnings.extend(result.warnings);
                all
            }
        });
    }
    Ok(merged.unwrap_or(QueryResult {
        columns: Vec::new(),
        rows: Vec::new(),
        warnings: Vec::new(),
        format_hint: None,
    }))
}

/// The result of a `count` step: one row, one column named `count`.
fn is_count(r: &QueryResult) -> bool {
    r.columns == ["count"] && r.rows.len() == 1
}

fn count_of(r: &QueryResult) -> i64 {
    match r.rows.first().and_then(|row| row.values.first()) {
        Some(Datum::Int(n)) => *n,
        _ => 0,
    }
}
