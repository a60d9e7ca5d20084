//! The embedded listener's security, tried as a user would with mosquitto's own clients: a
//! mosquitto_passwd file admits its users and refuses everyone else, a TLS listener takes
//! mqtts and refuses plaintext, and a listener on a non-loopback address without a password
//! file refuses to start. Refusals are logged once and never stop ingest.

mod common;
mod mqtt_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mqtt_support::*;
use provdb::publish::Message;
use provdb::simulate::SimulationOptions;
use provdb::Database;

/// A few simulated documents, their messages, and the graph an offline import makes of them.
fn workload(dir: &Path, seed: u64) -> (Vec<Message>, Database) {
    let fleet = SimulatedFleet::new(
        &dir.join("reference"),
        &SimulationOptions {
            seed,
            machines: 1,
            documents_per_machine: 3,
            records_per_document: 20,
        },
    );
    (fleet.messages, fleet.reference)
}

/// Runs mosquitto_pub once per message with `extra` options; true when every run succeeded.
fn mosquitto_publish(pub_bin: &Path, port: u16, messages: &[Message], extra: &[&str]) -> bool {
    let dir = tempfile::tempdir().expect("tempdir");
    messages.iter().enumerate().all(|(i, m)| {
        let file = dir.path().join(format!("m{i}"));
        std::fs::write(&file, &m.payload).expect("write payload");
        let out = Command::new(pub_bin)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
            .args(["-i", &format!("pub-{port}-{i}")])
            .args(["-t", &m.topic])
            .arg("-f")
            .arg(&file)
            .args(extra)
            .output()
            .expect("run mosquitto_pub");
        if !out.status.success() {
            eprintln!(
                "mosquitto_pub {extra:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        out.status.success()
    })
}

fn assert_clean_log(stderr: &str) {
    assert!(
        !stderr.contains("ERROR"),
        "an ERROR in normal operation:\n{stderr}"
    );
    assert!(
        !stderr.contains("\x1b["),
        "ANSI escapes on a non-terminal:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "a panic:\n{stderr}");
}

#[test]
fn password_file_admits_its_users_and_refuses_others_once_each() {
    let (Some(pub_bin), Some(_)) = (mosquitto_pub(), mosquitto_binary()) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = password_file(tmp.path(), "alice", "s3cret");
    let (messages, reference) = workload(tmp.path(), 3);
    let port = free_port();
    let db_path = tmp.path().join("served");
    let listen = format!("127.0.0.1:{port}");
    let serve = ServeProcess::start(
        &db_path,
        &[
            "--listen",
            &listen,
            "--password-file",
            file.to_str().expect("utf-8"),
        ],
        &[],
    );
    for _ in 0..2 {
        assert!(
            !mosquitto_publish(
                &pub_bin,
                port,
                &messages[..1],
                &["-u", "alice", "-P", "wrong"]
            ),
            "a wrong password was accepted"
        );
    }
    assert!(
        !mosquitto_publish(&pub_bin, port, &messages[..1], &[]),
        "a client without credentials was accepted"
    );
    assert!(
        !mosquitto_publish(
            &pub_bin,
            port,
            &messages[..1],
            &["-u", "mallory", "-P", "s3cret"]
        ),
        "an unknown user was accepted"
    );
    assert!(
        mosquitto_publish(&pub_bin, port, &messages, &["-u", "alice", "-P", "s3cret"]),
        "the right password was refused"
    );
    let (status, stderr) = serve.stop();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        stderr
            .matches("bad user name or password (user `alice`)")
            .count(),
        1,
        "the same refusal must be logged once:\n{stderr}"
    );
    assert!(stderr.contains("(user `mallory`)"), "{stderr}");
    assert_clean_log(&stderr);
    let db = Database::open(&db_path).expect("reopen");
    assert_same_graph(&db, &reference);
}

#[test]
fn tls_listener_takes_mqtts_and_refuses_plaintext() {
    let Some(pub_bin) = mosquitto_pub() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let certs = make_pki(tmp.path()).listener;
    let (messages, reference) = workload(tmp.path(), 4);
    let port = free_port();
    let db_path = tmp.path().join("served");
    let listen = format!("127.0.0.1:{port}");
    let mut serve = ServeProcess::start(
        &db_path,
        &[
            "--listen",
            &listen,
            "--tls-cert",
            certs.cert.to_str().expect("utf-8"),
            "--tls-key",
            certs.key.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(
        !mosquitto_publish(&pub_bin, port, &messages[..1], &[]),
        "a plaintext client was accepted on the TLS listener"
    );
    serve.wait_for_line(|l| l.contains("TLS handshake"), Duration::from_secs(10));
    assert!(
        serve.try_wait().is_none(),
        "a plaintext client stopped the service"
    );
    let ca = certs.ca.to_str().expect("utf-8");
    assert!(
        mosquitto_publish(&pub_bin, port, &messages, &["--cafile", ca]),
        "mqtts with the right CA was refused"
    );
    let (status, stderr) = serve.stop();
    assert!(status.success(), "{status:?}");
    assert_clean_log(&stderr);
    let db = Database::open(&db_path).expect("reopen");
    assert_same_graph(&db, &reference);
}

/// Runs `provdb serve ARGS` expecting it to refuse to start; returns its stderr.
fn refused_start(db: &Path, args: &[&str]) -> String {
    let out = common::provdb(db)
        .arg("serve")
        .args(args)
        .output()
        .expect("run provdb serve");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "serve {args:?} started:\n{stderr}");
    stderr
}

#[test]
fn settings_that_cannot_work_are_refused_at_start_with_the_fix() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    let anywhere = format!("0.0.0.0:{}", free_port());
    let stderr = refused_start(&db, &["--listen", &anywhere]);
    assert!(
        stderr.contains("--password-file") && stderr.contains("--allow-anonymous"),
        "{stderr}"
    );
    let stderr = refused_start(
        &db,
        &["--listen", "127.0.0.1:0", "--password-file", "/nonexistent"],
    );
    assert!(
        stderr.contains("cannot read password file /nonexistent"),
        "{stderr}"
    );
    let not_pem = tmp.path().join("not-a-cert.pem");
    std::fs::write(&not_pem, "hello").expect("write");
    let p = not_pem.to_str().expect("utf-8");
    let stderr = refused_start(
        &db,
        &["--listen", "127.0.0.1:0", "--tls-cert", p, "--tls-key", p],
    );
    assert!(
        stderr.contains("TLS certificate") && stderr.contains("not-a-cert.pem"),
        "{stderr}"
    );
    // With --allow-anonymous the same address is accepted.
    let serve = ServeProcess::start(&db, &["--listen", &anywhere, "--allow-anonymous"], &[]);
    let (status, stderr) = serve.stop();
    assert!(status.success());
    assert_clean_log(&stderr);
}
