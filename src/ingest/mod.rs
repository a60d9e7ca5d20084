//! The MQTT ingest service behind `provdb serve`: receives CamFlow provenance from many
//! machines over MQTT and archives it, losing nothing the broker delivered.
//!
//! * [`config`]: [`IngestConfig`], broker URLs and camflowd-style ini files.
//! * [`service`]: the pipeline (receive -> parallel decode -> batching writer -> manual acks
//!   after the write is durable), [`run`].
//! * [`listener`]: the embedded MQTT listener (acknowledges only what is durable), with
//!   [`passwords`] files and TLS.
//! * [`alerts`]: new alerts published on `camflow/alerts/<machine>` once durable (through the
//!   external broker, or to the embedded listener's subscribers).
//! * `poison`: crash-loop defence (a message that stops the process is quarantined).
//! * [`registry`]: the machine registry; [`quarantine`]: messages that could not be stored.
//!
//! ```no_run
//! use provdb::ingest::{self, IngestConfig, IngestControl};
//! let db = provdb::Database::open("provdb-data")?;
//! let config = IngestConfig::embedded("127.0.0.1:1883".parse()?);
//! let control = IngestControl::new();
//! let stop = control.shutdown.clone();
//! std::thread::spawn(move || { std::thread::sleep(std::time::Duration::from_secs(60)); stop.trigger() });
//! let totals = ingest::run(&db, &config, &control)?;
//! println!("{} messages stored", totals.stored);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod alerts;
pub(crate) mod client_errors;
pub mod config;
mod folding;
pub mod listener;
pub mod passwords;
mod poison;
pub mod quarantine;
pub mod registry;
pub mod service;
mod tls;
mod wire;

pub use client_errors::{CaFileError, TlsSetupError};
pub use config::{AutoFold, BrokerAuth, BrokerTarget, BrokerUrl, IngestConfig, MqttFileConfig};
pub use listener::{ListenerError, ListenerSecurity};
pub use passwords::PasswordFile;
pub use quarantine::{load_quarantine, QuarantineEntry};
pub use registry::{load_machines, MachineRecord};
pub use service::{run, IngestControl, IngestStats, Shutdown, StatsSnapshot};

/// Errors that stop the ingest service (bad input never does).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The database or the ingest pipeline failed.
    #[error(transparent)]
    Database(#[from] crate::Error),
    /// The external broker failed in a way retrying cannot mend (refused credentials, a
    /// certificate that does not verify): the message names the broker, the cause and the fix.
    #[error("{0}")]
    Broker(String),
    /// TLS to the external broker cannot be set up (an unusable CA file, no system
    /// certificates): the message names the broker, the cause and the fix.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// The embedded listener cannot start with these settings.
    #[error(transparent)]
    Listener(#[from] ListenerError),
    /// A setting of the service is unusable (the message says which and why).
    #[error("{0}")]
    Config(String),
    /// The network runtime could not be started.
    #[error("cannot start the network runtime: {0}")]
    Runtime(std::io::Error),
    /// The crash-loop journal (`<db>/decoding/`) could not be used.
    #[error("crash-loop journal {}: {source}", path.display())]
    Journal {
        /// The file or folder.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl From<provdb_storage::StorageError> for IngestError {
    fn from(e: provdb_storage::StorageError) -> Self {
        IngestError::Database(e.into())
    }
}

impl From<provdb_storage::ReadError> for IngestError {
    fn from(e: provdb_storage::ReadError) -> Self {
        IngestError::Database(e.into())
    }
}

impl From<provdb_storage::WriteError> for IngestError {
    fn from(e: provdb_storage::WriteError) -> Self {
        IngestError::Database(e.into())
    }
}

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DD hh:mm:ss.mmmZ` (UTC).
///
/// ```
/// assert_eq!(provdb::ingest::format_time_ms(1_700_000_000_123), "2023-11-14 22:13:20.123Z");
/// ```
pub fn format_time_ms(ms: u64) -> String {
    let t = provdb_storage::UtcDateTime::from_unix(i64::try_from(ms / 1000).unwrap_or(i64::MAX));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        ms % 1000
    )
}
