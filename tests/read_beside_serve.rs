//! Reading an archive that `provdb serve` is writing: the REPL follows the writer (a secondary
//! instance that catches up before each statement) instead of a read-only view frozen at the
//! moment it opened.

mod common;
mod mqtt_support;

use std::io::{BufRead as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mqtt_support::*;
use provdb::ingest::BrokerUrl;
use provdb::simulate::SimulationOptions;

/// Sends `statement` to the REPL and returns the value of its one-row CSV answer.
fn ask_one_count(
    stdin: &mut std::process::ChildStdin,
    lines: &mpsc::Receiver<String>,
    statement: &str,
) -> u64 {
    writeln!(stdin, "{statement}").expect("write to the REPL");
    stdin.flush().expect("flush");
    let mut previous = String::new();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the REPL answered within 30 s");
        if line.starts_with("1 row") {
            return previous
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("a count before `1 row`, got {previous:?}"));
        }
        previous = line;
    }
}

#[test]
fn repl_sees_what_serve_stores_after_it_opened() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("served");
    let fleet = SimulatedFleet::new(
        &tmp.path().join("reference"),
        &SimulationOptions {
            seed: 5,
            machines: 2,
            documents_per_machine: 20,
            records_per_document: 40,
        },
    );
    let expected = graph_counts_of(&fleet.reference);
    assert!(expected.1 > 0, "the fleet has edges");

    let listen = format!("127.0.0.1:{}", free_port());
    let url = BrokerUrl::parse(&format!("mqtt://{listen}")).expect("url");
    let serve = ServeProcess::start(&db, &["--listen", &listen], &[]);

    let mut repl = Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("--db")
        .arg(&db)
        .arg("repl")
        .arg("--history")
        .arg(tmp.path().join("history"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start provdb repl");
    let mut stdin = repl.stdin.take().expect("stdin");
    let stdout = repl.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    writeln!(stdin, ".mode csv").expect("write");
    let count_edges = "() -[e]-> () | count;";

    // Opened while serve runs and before anything was published: an empty archive.
    assert_eq!(ask_one_count(&mut stdin, &lines, count_edges), 0);

    assert_eq!(
        publish(&url, &fleet.messages, 1),
        fleet.messages.len() as u64
    );
    wait_for_counts(&db, expected, Duration::from_secs(60));

    // The same REPL, without reopening, sees every edge stored since.
    assert_eq!(ask_one_count(&mut stdin, &lines, count_edges), expected.1);

    drop(stdin);
    let status = repl.wait().expect("wait for the REPL");
    assert!(status.success(), "the REPL ended with {status:?}");
    let (status, log) = serve.stop();
    assert!(status.success(), "serve stopped with {status:?}\n{log}");
}

fn graph_counts_of(db: &provdb::Database) -> (u64, u64) {
    let stats = db.stats().expect("stats");
    (stats.vertices, stats.edges)
}
