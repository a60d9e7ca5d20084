//! Normal operation logs no ERROR, and no ANSI colour codes when stderr is not a terminal:
//! `provdb serve` (verbose, so its info lines are there to check) and `provdb publish`, through
//! a broker and with the embedded listener (with a port probe), then a graceful stop.

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

/// Runs `serve -v SERVE_ARGS`, publishes the wget sample to `publish_url` with
/// `provdb publish -v`, waits until it is stored, stops serve, and checks both logs.
/// With `probe`, a TCP connection is opened and closed there first (a port probe).
fn serve_publish_stop(serve_args: &[&str], publish_url: &str, probe: Option<&str>) {
    let Some(sample) = common::sample("v0.5.0-w3c-wget.log") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    let mut command = common::provdb(&db);
    command
        .arg("-v")
        .arg("serve")
        .args(serve_args)
        .env_remove("RUST_LOG");
    let serve = ServeProcess::start_command(command);
    if let Some(address) = probe {
        drop(std::net::TcpStream::connect(address).expect("probe the listener"));
    }

    let publish_log = tmp.path().join("publish.log");
    let published = common::provdb(&tmp.path().join("unused"))
        .arg("-v")
        .arg("publish")
        .arg("--broker")
        .arg(publish_url)
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

#[test]
fn through_a_broker_serve_publish_and_stop_log_no_error_and_no_colour_codes() {
    let Some(broker) = Mosquitto::start(false) else {
        return;
    };
    let url = broker.url().to_string();
    serve_publish_stop(
        &["--broker", &url, "--client-id", "log-output-test"],
        &url,
        None,
    );
}

#[test]
fn with_the_embedded_listener_serve_publish_and_stop_log_no_error_and_no_colour_codes() {
    let listen = format!("127.0.0.1:{}", free_port());
    // A port probe (connect, close) and a publisher's disconnect are normal events too.
    serve_publish_stop(
        &["--listen", listen.as_str()],
        &format!("mqtt://{listen}"),
        Some(&listen),
    );
}
