//! End-to-end ingest throughput: simulated CamFlow machines -> `provdb serve` (in-process,
//! with its embedded listener, and through mosquitto on loopback) -> durable store, next to
//! (a) decode alone and (b) offline import of the same documents, in the same run. Prints
//! medians over several runs. Then the alert latency: the same workload, one subscriber of
//! `camflow/alerts/#`, and the median and p99 of the time from the durable write that raised
//! an alert (its completing edge stored) to the alert message handed to the subscriber's
//! socket (embedded listener) or to the broker client (mosquitto).
//!
//! The import and the embedded-listener service run twice per round, with the default rule
//! pack and with detection off, interleaved, so the cost of detection is a ratio of one run.
//! The workload is the benign fleet plus the twelve attack scenarios (each on its own
//! machine), so the rules have alerts to raise.
//!
//! With INGEST_BENCH_ANOMALY=1, the embedded-listener service also runs with the anomaly
//! detector on (a fleet model in the archive) and off, rules on in both, interleaved.
//!
//! Each machine publishes over its own connection, in order, as each camflowd does (one
//! QoS 1 publisher per machine, in its own thread); INGEST_BENCH_CONNECTIONS=1 sends the whole
//! fleet over one connection instead.
//!
//! `cargo bench --bench ingest` (needs mosquitto installed; env INGEST_BENCH_DOCS and
//! INGEST_BENCH_RUNS adjust the size).

#![allow(missing_docs)] // criterion_group! generates undocumented public items

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use provdb::anomaly::archive::{replay, save_model};
use provdb::anomaly::{Model, ModelScope, Params, ReplayFilter, Trainer};
use provdb::ingest::{self, BrokerUrl, IngestConfig, IngestControl};
use provdb::publish::{publish_messages, Message, PublishOptions};
use provdb::simulate::scenarios::{simulate_scenarios, Scenario, ScenarioOptions};
use provdb::simulate::{to_messages, Simulation, SimulationOptions};
use provdb::{Database, DatabaseOptions, Detection};

/// The allocator of the `provdb` binary, tuned as the binary tunes it, so that the figures are the binary's.
#[path = "../src/allocator.rs"]
mod allocator;

struct Figures {
    seconds: f64,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn start_mosquitto(dir: &std::path::Path) -> Option<(Child, u16)> {
    let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 1000\nmax_queued_messages 0\n"),
    )
    .ok()?;
    let child = Command::new(binary)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((child, port));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn main() {
    allocator::tune(allocator::Workload::Service);
    // Ignore the flags cargo bench passes (--bench ...).
    let docs_per_machine = env_or("INGEST_BENCH_DOCS", 1000);
    let runs = env_or("INGEST_BENCH_RUNS", 3).max(1) as usize;
    let machines = 10;
    let mut docs: Vec<_> = Simulation::new(&SimulationOptions {
        seed: 2024,
        machines,
        documents_per_machine: docs_per_machine,
        records_per_document: 40,
    })
    .collect();
    // The attacks, spread through the stream (machine ids are distinct from the fleet's).
    let attacks: Vec<_> = simulate_scenarios(&Scenario::ALL, &ScenarioOptions::default())
        .into_iter()
        .flat_map(|run| run.documents)
        .collect();
    let step = (docs.len() / attacks.len().max(1)).max(1);
    for (i, d) in attacks.into_iter().enumerate() {
        docs.insert((i * step).min(docs.len()), d);
    }
    let records: usize = docs.iter().map(|d| d.records).sum();
    let json_bytes: usize = docs.iter().map(|d| d.json.len()).sum();
    let messages: Vec<Message> = to_messages(docs.clone(), "camflow/provenance/");
    let n = messages.len();
    println!(
        "workload: {machines} simulated machines, {n} messages, {records} records, {:.1} MB JSON, {:.1} MB payload",
        json_bytes as f64 / 1e6,
        messages.iter().map(|m| m.payload.len()).sum::<usize>() as f64 / 1e6
    );
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine: {cores} cores");
    let report = |name: &str, f: &[Figures]| -> f64 {
        let s = median(f.iter().map(|x| x.seconds).collect());
        println!(
            "{name:<28} {:>9.0} msg/s {:>10.0} records/s {:>7.1} MB/s JSON   (median of {} runs, {:.3} s)",
            n as f64 / s,
            records as f64 / s,
            json_bytes as f64 / s / 1e6,
            f.len(),
            s
        );
        records as f64 / s
    };

    // (a) Decode alone (payload -> records), one thread.
    let mut decode = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut total = 0usize;
        for m in &messages {
            total += provdb::decode::decode_payload(&m.payload, 64 << 20)
                .map(|b| b.len())
                .unwrap_or(0);
        }
        assert_eq!(total, records);
        decode.push(Figures {
            seconds: t.elapsed().as_secs_f64(),
        });
    }
    report("decode only (1 thread)", &decode);

    // (b) Offline import of the same documents (one log file, the importer).
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("fleet.log");
    write_log(&log, docs.iter().map(|d| &d.json));
    let detection = |on: bool| DatabaseOptions {
        detection: if on {
            Detection::DefaultPack
        } else {
            Detection::Off
        },
        ..DatabaseOptions::default()
    };
    let mut alerts_raised = 0;
    // The offline imports run as `provdb import` runs them; the service's runs below as
    // `provdb serve` does.
    allocator::tune(allocator::Workload::Batch);
    let (import, import_off) = interleaved(runs, |i, on| {
        let dir = tmp.path().join(format!("import-{i}-{on}"));
        // As `provdb import` opens it: flushes write with direct I/O.
        let options = DatabaseOptions {
            direct_io_writes: true,
            ..detection(on)
        };
        let db = Database::open_with(&dir, options).expect("db");
        let t = Instant::now();
        let r = db
            .import_files(std::slice::from_ref(&log), &mut |_| {})
            .expect("import");
        db.close().expect("close");
        if on {
            alerts_raised = r.alerts;
        }
        Figures {
            seconds: t.elapsed().as_secs_f64(),
        }
    });
    // Both medians and their ratio against the goal; the "on" throughput.
    let report_pair = |on: (&str, &[Figures]), off: (&str, &[Figures]), what: &str| -> f64 {
        let (on, off) = (report(on.0, on.1), report(off.0, off.1));
        println!("{what}: {:.0}% (goal >= 80%)", 100.0 * on / off);
        on
    };
    let offline = report_pair(
        ("offline import, rules on", &import),
        ("offline import, rules off", &import_off),
        &format!("rules on / off, offline import ({alerts_raised} alerts raised)"),
    );

    // (c) The service with its embedded listener (the default setup): publishers connect to
    // provdb itself, which acknowledges each publish once it is durable.
    allocator::tune(allocator::Workload::Service);
    let (embedded, embedded_off) = interleaved(runs, |i, on| {
        let dir = tmp.path().join(format!("embedded-{i}-{on}"));
        embedded_run(
            &dir,
            detection(on),
            &messages,
            &format!("embedded-{i}-{on}"),
        )
    });
    let served_embedded = report_pair(
        ("service, embedded, rules on", &embedded),
        ("service, embedded, rules off", &embedded_off),
        "rules on / off, service with its embedded listener",
    );

    // (f) The anomaly detector, rules on in both: the service into an archive holding a fleet
    // model (trained on another simulated fleet) against one without. Env-gated: training and
    // the extra runs take minutes.
    if env_or("INGEST_BENCH_ANOMALY", 0) == 1 {
        let model = train_fleet_model(tmp.path(), docs_per_machine);
        let (with_model, without_model) = interleaved(runs, |i, on| {
            let dir = tmp.path().join(format!("anomaly-{i}-{on}"));
            if on {
                let db = Database::open_with(&dir, detection(false)).expect("db");
                save_model(db.store(), ModelScope::Fleet, &model).expect("save model");
                db.close().expect("close");
            }
            embedded_run(
                &dir,
                detection(true),
                &messages,
                &format!("anomaly-{i}-{on}"),
            )
        });
        report_pair(
            ("service, detector on", &with_model),
            ("service, detector off", &without_model),
            "anomaly detector on / off, service with its embedded listener, rules on in both",
        );
    }

    // (e) Alert latency: the same workload (the attacks raise the alerts), one subscriber of
    // every alert.
    {
        let (config, url) = embedded_config();
        let dir = tmp.path().join("alerts-embedded");
        alert_run(
            &dir,
            &config,
            &url,
            &messages,
            "embedded listener",
            "subscriber socket",
        );
    }

    // (d) The service through mosquitto.
    let Some((mut broker, port)) = start_mosquitto(tmp.path()) else {
        println!("service through mosquitto: SKIPPED (mosquitto not installed)");
        return;
    };
    let url = BrokerUrl::parse(&format!("mqtt://127.0.0.1:{port}")).expect("url");
    let mut service = Vec::new();
    for i in 0..runs {
        let mut config = IngestConfig::external(url.clone());
        config.client_id = format!("bench-{i}");
        config.report_interval = None;
        let dir = tmp.path().join(format!("serve-{i}"));
        service.push(serve_run(
            &dir,
            DatabaseOptions::default(),
            &config,
            &url,
            &messages,
            &format!("bench-pub-{i}"),
        ));
    }
    let served = report("service via mosquitto", &service);
    {
        let mut config = IngestConfig::external(url.clone());
        config.client_id = "bench-alerts".to_owned();
        config.report_interval = None;
        let dir = tmp.path().join("alerts-mosquitto");
        alert_run(
            &dir,
            &config,
            &url,
            &messages,
            "via mosquitto",
            "broker client",
        );
    }
    println!(
        "service / offline import (rules on): embedded listener {:.0}%, via mosquitto {:.0}%   (goal >= 95%); offline import {:.0} records/s",
        100.0 * served_embedded / offline,
        100.0 * served / offline,
        offline
    );
    let _ = broker.kill();
    let _ = broker.wait();
}

/// Writes documents to a CamFlow log at `path`, one per line, as camflowd's file output.
fn write_log(path: &std::path::Path, documents: impl IntoIterator<Item = impl std::fmt::Display>) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("log"));
    for d in documents {
        writeln!(f, "{d}").expect("write");
    }
    f.flush().expect("flush");
}

/// `runs` rounds of `run(round, on)`, on then off in each round (interleaved, so that both
/// see the same load of the machine); the on figures, then the off ones.
fn interleaved(
    runs: usize,
    mut run: impl FnMut(usize, bool) -> Figures,
) -> (Vec<Figures>, Vec<Figures>) {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for i in 0..runs {
        on.push(run(i, true));
        off.push(run(i, false));
    }
    (on, off)
}

/// One run of the service into a fresh archive at `dir`: seconds from the first publish until
/// every message is durably stored.
fn serve_run(
    dir: &std::path::Path,
    options: DatabaseOptions,
    config: &IngestConfig,
    url: &BrokerUrl,
    messages: &[Message],
    publisher_id: &str,
) -> Figures {
    let n = messages.len() as u64;
    let db = Database::open_with(dir, options).expect("db");
    let control = IngestControl::new();
    let seconds = std::thread::scope(|s| {
        let c = control.clone();
        let dbr = &db;
        let h = s.spawn(move || ingest::run(dbr, config, &c));
        while !control.stats.snapshot().ready {
            std::thread::sleep(Duration::from_millis(5));
        }
        let connections = publisher_connections(messages);
        let t = Instant::now();
        let pubs: Vec<_> = connections
            .into_iter()
            .map(|(machine, msgs)| {
                let mut o = PublishOptions::new(url.clone());
                o.qos = 1;
                o.client_id = format!("{publisher_id}-{machine}");
                s.spawn(move || publish_messages(&msgs, &o))
            })
            .collect();
        while control.stats.snapshot().stored < n {
            std::thread::sleep(Duration::from_millis(1));
        }
        let secs = t.elapsed().as_secs_f64();
        for p in pubs {
            p.join().expect("publisher").expect("publish");
        }
        control.shutdown.trigger();
        h.join().expect("service").expect("service ok");
        secs
    });
    let st = db.stats().expect("stats");
    assert!(st.edges > 0);
    db.close().expect("close");
    Figures { seconds }
}

/// The messages of each publisher connection, in order: one per machine (as each camflowd
/// connects on its own), or all on one with INGEST_BENCH_CONNECTIONS=1.
fn publisher_connections(messages: &[Message]) -> Vec<(u32, Vec<Message>)> {
    if env_or("INGEST_BENCH_CONNECTIONS", 0) == 1 {
        return vec![(0, messages.to_vec())];
    }
    let mut by_machine: Vec<(u32, Vec<Message>)> = Vec::new();
    for m in messages {
        match by_machine
            .iter_mut()
            .find(|(machine, _)| *machine == m.machine)
        {
            Some((_, list)) => list.push(m.clone()),
            None => by_machine.push((m.machine, vec![m.clone()])),
        }
    }
    by_machine
}

/// A fleet model trained on another simulated fleet (seed 7, same size), imported into a
/// scratch archive under `dir` and replayed as `provdb detect train` does.
fn train_fleet_model(dir: &std::path::Path, docs_per_machine: u64) -> Model {
    let log = dir.join("training.log");
    let fleet = Simulation::new(&SimulationOptions {
        seed: 7,
        machines: 10,
        documents_per_machine: docs_per_machine,
        records_per_document: 40,
    });
    write_log(&log, fleet.map(|d| d.json));
    let options = DatabaseOptions {
        detection: Detection::Off,
        ..DatabaseOptions::default()
    };
    let db = Database::open_with(dir.join("training"), options).expect("db");
    db.import_files(std::slice::from_ref(&log), &mut |_| {})
        .expect("import");
    let mut trainer = Trainer::new(&Params::default());
    trainer.start_run("training fleet");
    replay(
        db.store(),
        &ReplayFilter::default(),
        &mut |_| {},
        &mut |m, e| trainer.edge(m, e),
    )
    .expect("replay");
    db.close().expect("close");
    let (model, cost) = trainer.finish().expect("train");
    println!(
        "anomaly model: {} edges, {} intervals, {:.1} us per edge in the streams",
        cost.edges,
        model.training.snapshots,
        cost.nanos as f64 / 1e3 / cost.edges.max(1) as f64
    );
    model
}

/// One run of the service with its embedded listener on a free port (`name` tells the
/// publisher's client id).
fn embedded_run(
    dir: &std::path::Path,
    options: DatabaseOptions,
    messages: &[Message],
    name: &str,
) -> Figures {
    let (config, url) = embedded_config();
    serve_run(
        dir,
        options,
        &config,
        &url,
        messages,
        &format!("bench-{name}"),
    )
}

/// The service's settings with its embedded listener on a free port, and that port's URL.
fn embedded_config() -> (IngestConfig, BrokerUrl) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}").parse().expect("addr");
    let url = BrokerUrl::parse(&format!("mqtt://127.0.0.1:{port}")).expect("url");
    let mut config = IngestConfig::embedded(listen);
    config.report_interval = None;
    (config, url)
}

/// One run of the service with a subscriber of every alert: prints the alert latency (the
/// service's own measure, from the durable write to `handed_to`).
fn alert_run(
    dir: &std::path::Path,
    config: &IngestConfig,
    url: &BrokerUrl,
    messages: &[Message],
    name: &str,
    handed_to: &str,
) {
    use rumqttc::{Event, Packet, QoS};
    let n = messages.len() as u64;
    let db = Database::open(dir).expect("db");
    let control = IngestControl::new();
    let (stats, delivered) = std::thread::scope(|s| {
        let c = control.clone();
        let dbr = &db;
        let h = s.spawn(move || ingest::run(dbr, config, &c));
        while !control.stats.snapshot().ready {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut o = rumqttc::MqttOptions::new("bench-soc", url.host.clone(), url.port);
        o.set_max_packet_size(16 << 20, 1 << 20);
        let (client, mut connection) = rumqttc::Client::new(o, 16);
        client
            .subscribe("camflow/alerts/#", QoS::AtLeastOnce)
            .expect("subscribe");
        let (subscribed_tx, subscribed_rx) = std::sync::mpsc::channel();
        let received = s.spawn(move || {
            let mut count = 0u64;
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(_))) => count += 1,
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            count
        });
        subscribed_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("SUBACK");
        let mut o = PublishOptions::new(url.clone());
        o.qos = 1;
        o.client_id = "bench-alerts-pub".to_owned();
        publish_messages(messages, &o).expect("publish");
        while control.stats.snapshot().stored < n {
            std::thread::sleep(Duration::from_millis(1));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while {
            let st = control.stats.snapshot();
            st.alerts_published + st.alerts_dropped < st.alerts_new
        } && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = client.disconnect();
        let delivered = received.join().expect("subscriber");
        control.shutdown.trigger();
        let stats = h.join().expect("service").expect("service ok");
        (stats, delivered)
    });
    db.close().expect("close");
    let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    println!(
        "alert latency, {name:<18} median {:.2} ms, p99 {:.2} ms (durable write -> {handed_to}; {} new alerts, {} published, {} received by the subscriber, {} dropped)",
        ms(stats.alert_latency_median),
        ms(stats.alert_latency_p99),
        stats.alerts_new,
        stats.alerts_published,
        delivered,
        stats.alerts_dropped
    );
}
