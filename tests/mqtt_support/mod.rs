//! Helpers of the MQTT ingest tests: a private mosquitto on a free loopback port, an
//! in-process service, and graph comparison.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use provdb::ingest::{self, BrokerUrl, IngestConfig, IngestControl, StatsSnapshot};
use provdb::publish::Message;
use provdb::Database;

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The mosquitto binary, or `None` (skip, with a message) when it is not installed; a test
/// failure under CI=true.
pub fn mosquitto_binary() -> Option<PathBuf> {
    for p in [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ] {
        if Path::new(p).exists() {
            return Some(PathBuf::from(p));
        }
    }
    if let Ok(out) = Command::new("which").arg("mosquitto").output() {
        let s = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !s.is_empty() {
            return Some(PathBuf::from(s));
        }
    }
    if under_ci() {
        panic!("CI=true but mosquitto is not installed (apt-get install mosquitto)");
    }
    eprintln!("SKIPPED: mosquitto is not installed (apt-get install mosquitto)");
    None
}

/// A private mosquitto on 127.0.0.1:port, killed on drop.
pub struct Mosquitto {
    pub port: u16,
    child: Option<Child>,
    binary: PathBuf,
    dir: tempfile::TempDir,
    persistence: bool,
}

impl Mosquitto {
    /// Starts one (`None`: mosquitto missing, test skipped).
    pub fn start(persistence: bool) -> Option<Mosquitto> {
        let binary = mosquitto_binary()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = Mosquitto {
            port: free_port(),
            child: None,
            binary,
            dir,
            persistence,
        };
        m.launch();
        Some(m)
    }

    fn launch(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        let mut text = format!(
            "listener {} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 1000\nmax_queued_messages 0\nmax_queued_bytes 0\n",
            self.port
        );
        if self.persistence {
            text.push_str(&format!(
                "persistence true\npersistence_location {}/\nautosave_interval 1\n",
                self.dir.path().display()
            ));
        }
        std::fs::write(&conf, text).expect("write mosquitto.conf");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("mosquitto did not start on port {}", self.port);
    }

    pub fn url(&self) -> BrokerUrl {
        BrokerUrl::parse(&format!("mqtt://127.0.0.1:{}", self.port)).expect("url")
    }

    /// Stops it gracefully (SIGTERM: persistence is saved).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A service running in-process on its own thread.
pub struct Service {
    pub control: IngestControl,
    thread: Option<std::thread::JoinHandle<(Database, Result<StatsSnapshot, ingest::IngestError>)>>,
}

/// A test configuration: short latency, no periodic report.
pub fn test_config(mut config: IngestConfig, client_id: &str) -> IngestConfig {
    config.client_id = client_id.to_owned();
    config.report_interval = None;
    config
}

impl Service {
    pub fn start(db: Database, config: IngestConfig) -> Service {
        let control = IngestControl::new();
        let c = control.clone();
        let thread = std::thread::spawn(move || {
            let r = ingest::run(&db, &config, &c);
            (db, r)
        });
        let s = Service {
            control,
            thread: Some(thread),
        };
        s.wait_until("subscribed", Duration::from_secs(20), |st| {
            st.subscriptions >= 1
        });
        s
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.control.stats.snapshot()
    }

    /// Waits (bounded) until `done` holds; panics with the last stats otherwise.
    pub fn wait_until(&self, what: &str, timeout: Duration, done: impl Fn(&StatsSnapshot) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.stats();
            if done(&s) {
                return;
            }
            if let Some(t) = &self.thread {
                assert!(
                    !t.is_finished(),
                    "the service stopped while waiting for {what}: {s:?}"
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {s:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `n` messages were handled (stored, quarantined or ignored).
    pub fn wait_handled(&self, n: u64, timeout: Duration) {
        self.wait_until(&format!("{n} messages handled"), timeout, |s| {
            s.stored + s.quarantined + s.ignored >= n
        });
    }

    pub fn stop(mut self) -> (Database, StatsSnapshot) {
        self.control.shutdown.trigger();
        let (db, r) = self
            .thread
            .take()
            .expect("running")
            .join()
            .expect("service thread panicked");
        (db, r.expect("service ended with an error"))
    }
}

/// The graph an offline import of `docs` (JSON texts) produces, in a fresh database.
pub fn reference_from_json(dir: &Path, docs: &[String]) -> Database {
    let db = Database::open(dir).expect("open reference db");
    for d in docs {
        db.ingest_json(d.clone().into_bytes())
            .expect("reference import");
    }
    db
}

/// The graph an offline import of files produces.
pub fn reference_from_files(dir: &Path, files: &[PathBuf]) -> Database {
    let db = Database::open(dir).expect("open reference db");
    db.import_files(files, &mut |_| {})
        .expect("reference import");
    db
}

/// Asserts two databases hold the same graph: counts of vertices, stubs, edges, per type and
/// per machine, and every vertex/edge of `expected` (by external id) is in `actual`.
pub fn assert_same_graph(actual: &Database, expected: &Database) {
    let a = actual.stats().expect("stats");
    let e = expected.stats().expect("stats");
    assert_eq!(
        (a.vertices, a.stub_vertices, a.edges),
        (e.vertices, e.stub_vertices, e.edges),
        "vertices, stubs, edges"
    );
    assert_eq!(a.vertex_types, e.vertex_types, "vertex types");
    assert_eq!(a.edge_types, e.edge_types, "edge types");
    assert_eq!(a.machines, e.machines, "machines");
}

/// Publishes (QoS 1 unless told) and returns how many messages went out.
pub fn publish(url: &BrokerUrl, messages: &[Message], qos: u8) -> u64 {
    let mut o = provdb::publish::PublishOptions::new(url.clone());
    o.qos = qos;
    o.client_id = format!("test-pub-{}-{}", std::process::id(), free_port());
    o.ack_timeout = Duration::from_secs(60);
    provdb::publish::publish_messages(messages, &o)
        .expect("publish")
        .messages
}

/// The inflated JSON of a message payload.
pub fn json_of(m: &Message) -> String {
    let bytes = provdb::decode::payload::unwrap_payload(&m.payload, 64 << 20).expect("payload");
    String::from_utf8(bytes).expect("utf-8")
}

/// `provdb serve` as a child process on `broker` with extra arguments; returns once it has
/// subscribed (its stderr is echoed with the prefix `[name]`).
pub fn spawn_serve_with(db: &Path, broker: &Mosquitto, name: &str, extra: &[&str]) -> Child {
    use std::io::{BufRead as _, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("--db")
        .arg(db)
        .args(["serve", "--report-secs", "0", "--broker"])
        .arg(broker.url().to_string())
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start provdb serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let name = name.to_owned();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[{name}] {line}");
            if !sent && line.contains("subscribed") {
                let _ = tx.send(());
                sent = true;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("provdb serve did not subscribe within 30 s");
    child
}
