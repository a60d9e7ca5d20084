//! The alert topic prefix is checked before the service starts: a prefix with MQTT wildcards,
//! or one under the topics the service ingests (it would read its own alerts back), is a
//! setting error with a message, not a running service.

mod common;
mod mqtt_support;

use mqtt_support::free_port;
use provdb::ingest::{self, IngestConfig, IngestControl, IngestError};
use provdb::Database;

fn run_with_prefix(prefix: &str) -> Result<(), IngestError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = Database::open(tmp.path().join("db")).expect("db");
    let mut config =
        IngestConfig::embedded(format!("127.0.0.1:{}", free_port()).parse().expect("addr"));
    config.alert_topic_prefix = prefix.to_owned();
    let control = IngestControl::new();
    // Triggered at once: a valid setting returns as soon as the service has started.
    control.shutdown.trigger();
    ingest::run(&db, &config, &control).map(|_| ())
}

#[test]
fn unusable_alert_topic_prefixes_are_refused_before_starting() {
    for prefix in [
        "camflow/alerts/#",
        "alerts/+/",
        "camflow/provenance/alerts/",
    ] {
        match run_with_prefix(prefix) {
            Err(IngestError::Config(message)) => {
                assert!(message.contains(prefix), "{message}")
            }
            other => panic!("{prefix}: {other:?}"),
        }
    }
    for prefix in ["camflow/alerts/", "soc/", ""] {
        assert!(run_with_prefix(prefix).is_ok(), "{prefix}");
    }
}
