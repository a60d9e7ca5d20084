//! Normal operation logs no ERROR, and no ANSI colour codes when stderr is not a terminal:
//! `provdb serve` (verbose, so its info lines are there to check) and `provdb publish` through
//! a broker, then a graceful stop, with stderr captured into files.

mod common;
mod mqtt_support;

use std::process::Stdio;
use std::time::Duration;

use mqtt_support::*;

fn assert_quiet(what: &str, log: &str) {
    assert!(!log.contains("ERROR"), "{what} logged an ERROR:\n{log}");
    assert!(
        !log.contains("\u{1b}["),
        "{what} wrote ANSI escape codes into a file:\n{log:?}"
    );
}

#[test]
fn serve_publish_and_stop_log_no_error_and_no_colour_codes() {
    let Some(sample) = common::sample("v0.5.0-w3c-wget.log") else {
        return;
    };
    let Some(broker) = Mosquitto::start(false) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    let mut command = common::provdb(&db);
    command
        .arg("-v")
        .arg("serve")
        .arg("--broker")
        .arg(broker.url().to_string())
        .arg("--client-id")
        .arg("log-output-test")
        .env_remove("RUST_LOG");
    let serve = ServeProcess::start(command, tmp.path().join("serve.log"));

    let publish_log = tmp.path().join("publish.log");
    let published = common::provdb(&tmp.path().join("unused"))
        .arg("-v")
        .arg("publish")
        .arg("--broker")
        .arg(broker.url().to_string())
        .arg(&sample)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&publish_log).expect("log file"))
        .status()
        .expect("run provdb publish");
    let publish_text = std::fs::read_to_string(&publish_log).expect("publish log");
    assert!(published.success(), "{publish_text}");

    // Stop once everything published is stored: the publisher's disconnect has happened.
    let (_, vertices, _, edges, _) = common::SAMPLES[0];
    wait_for_counts(&db, (vertices, edges), Duration::from_secs(60));
    let (exit, serve_text) = serve.stop();
    assert!(exit.success(), "{serve_text}");
    // The checks below are only meaningful if tracing lines were written at all.
    assert!(
        serve_text.contains("INFO"),
        "no info line from serve -v:\n{serve_text}"
    );
    assert_quiet("provdb serve", &serve_text);
    assert_quiet("provdb publish", &publish_text);
}
