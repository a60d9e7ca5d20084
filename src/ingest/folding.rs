//! The service's own folds ([`AutoFold`]): a thread that looks at the archive's fold backlog
//! every check interval and folds when the policy says so. A fold holds the writer only to plan
//! (flush what it covers, read the counters) and to name the new generation: it writes the file
//! beside ingest (from the entries of the edges below its mark, all committed before the plan),
//! and the compaction that then drops the folded entries from the tables runs beside ingest
//! too. Each fold rewrites the whole snapshot, so its time grows with the folded graph (8.7 s
//! at 8.3M edges on a 2-core VM, when ingest waited for all of it); the geometric policy keeps
//! folds rare.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::config::AutoFold;
use crate::Database;

/// How long the thread sleeps between looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Folds `db` whenever `policy` finds it due, until `stop` is set. A failed fold is logged and
/// ends the thread (ingest goes on; `provdb compact` folds later): an archive of format 1
/// cannot fold, and a fold that failed on a full disk would fail again.
pub(crate) fn keep_folded(db: &Database, policy: AutoFold, stop: &AtomicBool) {
    let store = db.store();
    let mut next_look = Instant::now() + policy.check_interval;
    while !stop.load(Ordering::Acquire) {
        if Instant::now() < next_look {
            std::thread::sleep(STOP_POLL.min(policy.check_interval));
            continue;
        }
        next_look = Instant::now() + policy.check_interval;
        let backlog = match store.fold_backlog() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("automatic fold: could not read the fold backlog ({e}); not folding from now on");
                return;
            }
        };
        if !policy.due(backlog.folded_edges, backlog.unfolded_edges) {
            continue;
        }
        let started = Instant::now();
        match store.fold_adjacency() {
            Ok(bytes) => tracing::info!(
                "folded {} edges written since the last fold into the adjacency snapshot ({} in all, {bytes} bytes) in {:.1} s",
                backlog.unfolded_edges,
                backlog.folded_edges + backlog.unfolded_edges,
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                tracing::warn!(
                    "automatic fold failed ({e}); ingest goes on, not folding from now on (`provdb compact` folds)"
                );
                return;
            }
        }
    }
}
