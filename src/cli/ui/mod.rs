//! `provdb ui`: the investigation page in the browser and its read-only JSON API, served by
//! the same binary (axum on tokio). The page and its script are built in (`assets/`): it works
//! offline, with nothing to install.
//!
//! The archive is opened as a RocksDB secondary that catches up with the writer every second,
//! so the page shows what `provdb serve` stores while it runs, and never stops it.

mod api;
mod graph_json;
mod security;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use provdb::Database;

use security::Access;

/// How often the secondary instance catches up with the writer.
const CATCH_UP_EVERY: Duration = Duration::from_secs(1);

/// Arguments of `provdb ui`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Open the printed address in a browser: a query box (the query language of `provdb query`), \
results as a table and as a graph (click a vertex for its attributes, expand its ancestors or \
descendants), the alerts (each opens its causal path) and the machines, updating live while \
`provdb serve` ingests. `/?q=QUERY` opens the page with that query run.

JSON API (read-only): GET /api/query?q=QUERY (exactly `provdb query --format json`), \
/api/graph?q=QUERY (columns, rows, vertices, edges), /api/vertex/ID (attributes and adjacent \
edges), /api/alerts, /api/alerts/ID (the alert and its neighbourhood), /api/machines \
(registry and quarantine), /api/events (server-sent events when the archive changes). A \
query error is status 400 with {error, message, line, column, help}.

On an address other than loopback, --password-file (mosquitto_passwd format, as `serve`'s; \
HTTP basic authentication) or --allow-anonymous is required.")]
pub struct UiArgs {
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Only users of this mosquitto_passwd file may use the page (HTTP basic authentication).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Serve without a password on an address other than loopback.
    #[arg(long)]
    pub allow_anonymous: bool,
    /// The guards of every query.
    #[command(flatten)]
    pub guards: crate::cli::query::GuardArgs,
}

/// What every request handler shares.
pub struct UiState {
    db: Database,
    limits: provdb::query::Limits,
    /// Queries run on blocking threads; at most this many at once, so that a burst of heavy
    /// queries cannot take every thread of the machine.
    query_slots: tokio::sync::Semaphore,
    /// The archive's write sequence number at the last catch-up that changed it: what
    /// `/api/events` tells the page about.
    changes: tokio::sync::watch::Sender<u64>,
    /// Set when the server stops, which ends the open event streams (a graceful shutdown
    /// waits for every connection to close).
    stopping: tokio::sync::watch::Sender<bool>,
}

pub fn run(db_path: &Path, args: UiArgs) -> anyhow::Result<ExitCode> {
    let access = Access::new(
        args.listen,
        args.password_file.as_deref(),
        args.allow_anonymous,
    )?;
    if !db_path.join("CURRENT").exists() {
        anyhow::bail!(
            "no provdb database at {} (create one with `provdb --db {} import FILE...` or `provdb serve`)",
            db_path.display(),
            db_path.display()
        );
    }
    let secondary = std::env::temp_dir().join(format!("provdb-ui-{}", std::process::id()));
    let db = Database::open_secondary(db_path, secondary.clone())
        .with_context(|| format!("opening {} for reading", db_path.display()))?;
    db.catch_up()?;
    let limits = args.guards.limits();
    let slots = std::thread::available_parallelism().map_or(2, |n| n.get());
    let sequence = db.store().sequence();
    let state = Arc::new(UiState {
        db,
        limits,
        query_slots: tokio::sync::Semaphore::new(slots),
        changes: tokio::sync::watch::Sender::new(sequence),
        stopping: tokio::sync::watch::Sender::new(false),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let served = runtime.block_on(serve(state, args.listen, access));
    let _ = std::fs::remove_dir_all(&secondary);
    served?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(state: Arc<UiState>, listen: SocketAddr, access: Access) -> anyhow::Result<()> {
    // Ctrl-C or SIGTERM stops the server and `run` removes the secondary's private folder.
    // Registered before the address line is printed: scripts signal as soon as they read it.
    let mut stop = crate::cli::signals::StopSignals::install()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let bound = listener.local_addr()?;
    // The one line tests and scripts read to find a port chosen with `:0`.
    println!("provdb ui: http://{bound}/");
    tokio::spawn(catch_up_loop(state.clone()));
    let app = api::router(state.clone(), access.with_bound(bound));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            stop.recv().await;
            state.stopping.send_replace(true);
        })
        .await
        .context("serving HTTP")?;
    Ok(())
}

/// Follows the writer: new vertices, edges, alerts and machines appear without a restart.
async fn catch_up_loop(state: Arc<UiState>) {
    let mut tick = tokio::time::interval(CATCH_UP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = state.clone();
        let caught_up =
            tokio::task::spawn_blocking(move || s.db.catch_up().map(|()| s.db.store().sequence()));
        match caught_up.await {
            Ok(Ok(sequence)) => {
                state.changes.send_if_modified(|seen| {
                    let changed = *seen != sequence;
                    *seen = sequence;
                    changed
                });
            }
            Ok(Err(e)) => tracing::warn!("catching up with the writer: {e}"),
            Err(e) => tracing::warn!("catching up with the writer: {e}"),
        }
    }
}
