//! The client side of `provdb serve --broker` and `provdb publish` against a mosquitto with a
//! TLS listener (certificates made here) and a password file: the right CA and password
//! ingest; a wrong password, a CA that did not sign the broker's certificate, or a CA file
//! that is not a certificate each end the program at once with a non-zero status and a message
//! naming the broker, the cause and the fix (no endless retry).

mod common;
mod mqtt_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mqtt_support::*;

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

/// A permanent failure must end the program within this long (the transient retry would go on
/// for ever in `serve`, and for over 15 s in `publish`).
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// A mosquitto with TLS and a password file, and the PKI it uses.
struct SecuredBroker {
    broker: Mosquitto,
    pki: TestPki,
    /// A file that is not a certificate.
    not_a_certificate: PathBuf,
    dir: tempfile::TempDir,
}

fn secured_broker() -> Option<SecuredBroker> {
    mosquitto_binary()?;
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path());
    let passwords = password_file(dir.path(), USER, PASSWORD);
    let not_a_certificate = dir.path().join("not-a-certificate.pem");
    std::fs::write(&not_a_certificate, "this is a CA file, honest\n").expect("write");
    let broker = Mosquitto::start_secured(
        false,
        ListenerSecurity {
            tls: Some(pki.listener.clone()),
            password_file: Some(passwords),
        },
    )?;
    Some(SecuredBroker {
        broker,
        pki,
        not_a_certificate,
        dir,
    })
}

/// The client options of one attempt.
struct Credentials<'a> {
    ca_file: &'a Path,
    password: &'a str,
}

fn client_args(command: &mut Command, broker: &SecuredBroker, c: &Credentials<'_>) {
    command
        .arg("--broker")
        .arg(broker.broker.url().to_string())
        .arg("--ca-file")
        .arg(c.ca_file)
        .arg("--username")
        .arg(USER)
        .arg("--password")
        .arg(c.password)
        .env_remove("PROVDB_MQTT_PASSWORD");
}

/// Waits (bounded) for a child to exit; kills it and fails the test otherwise.
fn wait_exit(mut child: Child, what: &str, within: Duration) -> Output {
    let deadline = Instant::now() + within;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{what} still running after {within:?} (it should have stopped); stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `serve` with these credentials and expects a quick failing exit; returns its stderr.
fn serve_failure(broker: &SecuredBroker, c: &Credentials<'_>, db: &Path) -> String {
    let mut command = common::provdb(db);
    command.arg("serve").arg("--client-id").arg("security-test");
    client_args(&mut command, broker, c);
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn provdb serve");
    let out = wait_exit(child, "provdb serve", EXIT_WITHIN);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "serve should fail; stderr:\n{stderr}"
    );
    stderr
}

/// Runs `publish` of `file` with these credentials; returns the output.
fn publish_output(broker: &SecuredBroker, c: &Credentials<'_>, file: &Path, db: &Path) -> Output {
    let mut command = common::provdb(db);
    command.arg("publish");
    client_args(&mut command, broker, c);
    let child = command
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn provdb publish");
    wait_exit(child, "provdb publish", Duration::from_secs(60))
}

fn assert_mentions(stderr: &str, parts: &[&str]) {
    for p in parts {
        assert!(stderr.contains(p), "expected `{p}` in:\n{stderr}");
    }
}

/// Starts `serve` with the right CA and password into `served`, publishes `sample` with them,
/// and waits until the archive holds the sample's graph (known from the sample list).
fn serve_and_publish_sample(
    broker: &SecuredBroker,
    sample: &Path,
    served: &Path,
    client_id: &str,
) -> ServeProcess {
    let good = Credentials {
        ca_file: &broker.pki.listener.ca,
        password: PASSWORD,
    };
    let mut command = common::provdb(served);
    command.arg("serve").arg("--client-id").arg(client_id);
    client_args(&mut command, broker, &good);
    let serve = ServeProcess::start_command(command);
    let unused_db = served.with_extension("unused");
    let published = publish_output(broker, &good, sample, &unused_db);
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    let (_, vertices, _, edges, _) = common::SAMPLES[0];
    wait_for_counts(served, (vertices, edges), Duration::from_secs(60));
    serve
}

#[test]
fn serve_ingests_over_mqtts_with_password_and_ca() {
    let Some(sample) = common::sample("v0.5.0-w3c-wget.log") else {
        return;
    };
    let Some(broker) = secured_broker() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    let serve = serve_and_publish_sample(&broker, &sample, &served, "security-test-ok");

    // The reference: an offline import of the same file.
    let reference = tmp.path().join("reference");
    common::stdout_of(
        &common::provdb(&reference)
            .arg("import")
            .arg(&sample)
            .output()
            .expect("import"),
    );
    let expected = graph_counts(&reference);
    let (_, vertices, _, edges, _) = common::SAMPLES[0];
    assert_eq!(expected, (vertices, edges), "offline import of the sample");
    assert_eq!(graph_counts(&served), expected);

    let (exit, log) = serve.stop();
    assert!(exit.success(), "{log}");
    assert_eq!(graph_counts(&served), expected);
}

#[test]
fn serve_exits_with_a_clear_message_on_each_permanent_failure() {
    let Some(broker) = secured_broker() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("db");
    let url = broker.broker.url().to_string();

    let stderr = serve_failure(
        &broker,
        &Credentials {
            ca_file: &broker.pki.listener.ca,
            password: "wrong",
        },
        &db,
    );
    assert_mentions(
        &stderr,
        &[&url, "refused user 'alice'", "--username/--password"],
    );

    let other_ca = broker.pki.other_ca.display().to_string();
    let stderr = serve_failure(
        &broker,
        &Credentials {
            ca_file: &broker.pki.other_ca,
            password: PASSWORD,
        },
        &db,
    );
    assert_mentions(
        &stderr,
        &[&url, "failed verification", &other_ca, "--ca-file"],
    );

    let junk = broker.not_a_certificate.display().to_string();
    let stderr = serve_failure(
        &broker,
        &Credentials {
            ca_file: &broker.not_a_certificate,
            password: PASSWORD,
        },
        &db,
    );
    assert_mentions(&stderr, &[&url, &junk, "no certificate", "--ca-file"]);

    // Nothing was stored by the failed runs.
    assert_eq!(graph_counts(&db), (0, 0));
}

#[test]
fn publish_exits_with_a_clear_message_on_each_permanent_failure() {
    let Some(broker) = secured_broker() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    // Any W3C document will do: the connection fails before it is sent.
    let doc = tmp.path().join("doc.log");
    std::fs::write(
        &doc,
        r#"{"prefix":{},"activity":{"cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=":{"prov:type":"task","cf:machine_id":"cf:1958431827"}}}"#,
    )
    .expect("write");
    let db = tmp.path().join("unused");
    let url = broker.broker.url().to_string();
    let cases: [(Credentials<'_>, Vec<String>); 3] = [
        (
            Credentials {
                ca_file: &broker.pki.listener.ca,
                password: "wrong",
            },
            vec![
                url.clone(),
                "refused user 'alice'".into(),
                "--username/--password".into(),
            ],
        ),
        (
            Credentials {
                ca_file: &broker.pki.other_ca,
                password: PASSWORD,
            },
            vec![
                url.clone(),
                "failed verification".into(),
                broker.pki.other_ca.display().to_string(),
            ],
        ),
        (
            Credentials {
                ca_file: &broker.not_a_certificate,
                password: PASSWORD,
            },
            vec![
                url.clone(),
                broker.not_a_certificate.display().to_string(),
                "no certificate".into(),
            ],
        ),
    ];
    for (credentials, expected) in &cases {
        let started = Instant::now();
        let out = publish_output(&broker, credentials, &doc, &db);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "publish should fail:\n{stderr}");
        assert!(
            started.elapsed() < EXIT_WITHIN,
            "publish took {:?} to give up:\n{stderr}",
            started.elapsed()
        );
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        assert_mentions(&stderr, &expected);
    }
}

#[test]
fn serve_exits_when_the_broker_refuses_its_password_on_reconnection() {
    let Some(sample) = common::sample("v0.5.0-w3c-wget.log") else {
        return;
    };
    let Some(mut broker) = secured_broker() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    let serve = serve_and_publish_sample(&broker, &sample, &served, "security-test-rotated");
    let (_, vertices, _, edges, _) = common::SAMPLES[0];

    // The administrator changes alice's password and restarts the broker.
    password_file(broker.dir.path(), USER, "rotated");
    let started = Instant::now();
    broker.broker.restart();
    let (exit, log) = serve.wait_exit(Duration::from_secs(30));
    assert!(!exit.success(), "serve should fail:\n{log}");
    assert_mentions(&log, &["refused user 'alice'", "--username/--password"]);
    assert!(started.elapsed() < Duration::from_secs(30));
    // What it stored before stays.
    assert_eq!(graph_counts(&served), (vertices, edges));
}
