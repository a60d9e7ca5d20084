//! Helpers of the MQTT ingest tests: a private mosquitto on a free loopback port, an
//! in-process service, and graph comparison.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use provdb::ingest::{self, BrokerUrl, IngestConfig, IngestControl, StatsSnapshot};
use provdb::publish::Message;
use provdb::Database;

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// An MQTT client id no other client of this test process uses. Two clients with one id take
/// each other's session over at the broker, so ids must not come from anything that can
/// repeat (a port released by `free_port` can be handed out again at once).
pub fn unique_client_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
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

/// PEM files of a TLS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA that signed the server certificate.
    pub ca: PathBuf,
    /// The server certificate (for 127.0.0.1).
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

/// Who may connect to a mosquitto listener, and over what.
#[derive(Debug, Clone, Default)]
pub struct ListenerSecurity {
    /// Serve TLS (mqtts://) with these files.
    pub tls: Option<TlsFiles>,
    /// A `mosquitto_passwd` file: only its users may connect (no anonymous clients).
    pub password_file: Option<PathBuf>,
}

/// Writes a mosquitto password file for one user (`mosquitto_passwd -b -c`).
pub fn password_file(dir: &Path, user: &str, password: &str) -> PathBuf {
    let path = dir.join("passwords");
    let binary = ["/usr/bin/mosquitto_passwd", "/usr/sbin/mosquitto_passwd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("mosquitto_passwd");
    let status = Command::new(binary)
        .arg("-b")
        .arg("-c")
        .arg(&path)
        .arg(user)
        .arg(password)
        .status()
        .expect("run mosquitto_passwd (it comes with the mosquitto package)");
    assert!(status.success(), "mosquitto_passwd failed: {status}");
    path
}

/// A test PKI: a CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA.
pub struct TestPki {
    /// Files of the broker's TLS listener (`ca` is the CA clients must trust).
    pub listener: TlsFiles,
    /// A self-signed CA that did not sign the broker's certificate.
    pub other_ca: PathBuf,
}

/// Makes a [`TestPki`] in `dir`.
pub fn make_pki(dir: &Path) -> TestPki {
    fn ca(name: &str) -> (rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>) {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("self-signed CA");
        (cert, rcgen::Issuer::new(params, key))
    }
    let (ca_cert, issuer) = ca("provdb test CA");
    let server_key = rcgen::KeyPair::generate().expect("server key");
    let server_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server params");
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    let (other_cert, _) = ca("provdb unrelated CA");
    let write = |name: &str, pem: String| {
        let p = dir.join(name);
        std::fs::write(&p, pem).expect("write PEM");
        p
    };
    TestPki {
        listener: TlsFiles {
            ca: write("ca.pem", ca_cert.pem()),
            cert: write("server.pem", server_cert.pem()),
            key: write("server.key", server_key.serialize_pem()),
        },
        other_ca: write("other-ca.pem", other_cert.pem()),
    }
}

/// A private mosquitto on 127.0.0.1:port, killed on drop.
pub struct Mosquitto {
    pub port: u16,
    child: Option<Child>,
    binary: PathBuf,
    dir: tempfile::TempDir,
    persistence: bool,
    security: ListenerSecurity,
}

impl Mosquitto {
    /// Starts one (`None`: mosquitto missing, test skipped).
    pub fn start(persistence: bool) -> Option<Mosquitto> {
        Mosquitto::start_secured(persistence, ListenerSecurity::default())
    }

    /// Starts one with TLS and/or a password file (`None`: mosquitto missing, test skipped).
    pub fn start_secured(persistence: bool, security: ListenerSecurity) -> Option<Mosquitto> {
        let binary = mosquitto_binary()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = Mosquitto {
            port: free_port(),
            child: None,
            binary,
            dir,
            persistence,
            security,
        };
        m.launch();
        Some(m)
    }

    fn launch(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        let mut text = format!(
            "listener {} 127.0.0.1\nallow_anonymous {}\nmax_inflight_messages 1000\nmax_queued_messages 0\nmax_queued_bytes 0\n",
            self.port,
            self.security.password_file.is_none()
        );
        if let Some(tls) = &self.security.tls {
            text.push_str(&format!(
                "cafile {}\ncertfile {}\nkeyfile {}\n",
                tls.ca.display(),
                tls.cert.display(),
                tls.key.display()
            ));
        }
        if let Some(p) = &self.security.password_file {
            text.push_str(&format!("password_file {}\n", p.display()));
        }
        if self.security.tls.is_some() || self.security.password_file.is_some() {
            // Started as root, mosquitto switches to user `mosquitto` before reading the
            // password file, which then cannot read the test's private temporary folder.
            text.push_str("user root\n");
        }
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
        let scheme = if self.security.tls.is_some() {
            "mqtts"
        } else {
            "mqtt"
        };
        BrokerUrl::parse(&format!("{scheme}://127.0.0.1:{}", self.port)).expect("url")
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
        s.wait_until("ready", Duration::from_secs(20), |st| st.ready);
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

/// A simulated fleet: its MQTT messages (camflowd's encoding, on `camflow/provenance/<id>`)
/// and the graph an offline import of the same documents makes, in `reference_dir`: what a
/// service that loses nothing and stores nothing twice must end up with.
pub struct SimulatedFleet {
    pub messages: Vec<Message>,
    pub reference: Database,
}

impl SimulatedFleet {
    pub fn new(reference_dir: &Path, options: &provdb::simulate::SimulationOptions) -> Self {
        let docs: Vec<_> = provdb::simulate::Simulation::new(options).collect();
        let json: Vec<String> = docs.iter().map(|d| d.json.clone()).collect();
        SimulatedFleet {
            messages: provdb::simulate::to_messages(docs, "camflow/provenance/"),
            reference: reference_from_json(reference_dir, &json),
        }
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
    o.client_id = unique_client_id("test-pub");
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

/// `provdb serve` as a child process, its stderr kept (and echoed) line by line; killed on
/// drop.
pub struct ServeProcess {
    child: Option<Child>,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServeProcess {
    /// Spawns `command` (a `provdb ... serve ...` command line); does not wait.
    pub fn spawn_command(mut command: Command) -> ServeProcess {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start provdb serve");
        let stderr = child.stderr.take().expect("stderr");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("[serve] {line}");
                sink.lock().expect("lines").push(line);
            }
        });
        ServeProcess {
            child: Some(child),
            lines,
        }
    }

    /// Spawns `command` and waits (30 s at most) until it is ready to receive (listening, or
    /// subscribed at its broker).
    pub fn start_command(command: Command) -> ServeProcess {
        let p = ServeProcess::spawn_command(command);
        p.wait_for_line(
            |l| l.contains("listening (ready") || l.contains("connected and subscribed"),
            Duration::from_secs(30),
        );
        p
    }

    /// `provdb --db DB serve --report-secs 0 ARGS...` with extra environment variables.
    pub fn command(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_provdb"));
        cmd.arg("--db")
            .arg(db)
            .arg("serve")
            .args(["--report-secs", "0"])
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts `provdb serve ARGS` (see [`ServeProcess::command`]) and waits until it is ready.
    pub fn start(db: &Path, args: &[&str], env: &[(&str, &str)]) -> ServeProcess {
        ServeProcess::start_command(ServeProcess::command(db, args, env))
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("running")
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child_mut().try_wait().expect("try_wait")
    }

    /// Everything it printed on stderr so far.
    pub fn log(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// Waits until a line satisfies `want`; panics after `timeout`.
    pub fn wait_for_line(&self, want: impl Fn(&str) -> bool, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.lines.lock().expect("lines").iter().any(|l| want(l)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "provdb serve did not print the expected line; stderr:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it gracefully (SIGTERM) and waits (bounded) for the exit: its status and stderr.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let pid = self.child_mut().id();
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        self.wait_exit(Duration::from_secs(30))
    }

    /// Waits until it exits on its own (a test failure after `within`): status and stderr.
    pub fn wait_exit(mut self, within: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_wait() {
                self.child = None;
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return (status, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "serve still running after {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The child process, no longer killed on drop.
    pub fn into_child(mut self) -> Child {
        self.child.take().expect("running")
    }

    /// SIGKILL, then wait.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// (vertices, edges) of an archive, read while `provdb serve` may be writing it.
///
/// A read-only open of a live archive can fail for a moment: between the open reading the
/// file list and opening a table file, the writer's compaction may delete that file. Such a
/// failure says nothing about what is stored, so it is retried (bounded), never read as zero.
pub fn graph_counts(db: &Path) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Database::open_read_only(db).and_then(|d| d.stats()) {
            Ok(stats) => return (stats.vertices, stats.edges),
            Err(e) if Instant::now() < deadline => {
                eprintln!("reading the live archive {}: {e}; retrying", db.display());
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("could not read the archive {} for 10 s: {e}", db.display()),
        }
    }
}

/// Edges of an archive, read while `provdb serve` may be writing it (see [`graph_counts`]).
pub fn edges_stored(db: &Path) -> u64 {
    graph_counts(db).1
}

/// Waits (bounded) until the archive holds `expected` (vertices, edges).
pub fn wait_for_counts(db: &Path, expected: (u64, u64), timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let now = graph_counts(db);
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the archive holds {now:?} (vertices, edges), expected {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// mosquitto_pub, or `None` (skip, with a message) when missing; a failure under CI=true.
pub fn mosquitto_pub() -> Option<PathBuf> {
    for p in ["/usr/bin/mosquitto_pub", "/usr/local/bin/mosquitto_pub"] {
        if Path::new(p).exists() {
            return Some(PathBuf::from(p));
        }
    }
    assert!(
        !under_ci(),
        "CI=true but mosquitto_pub is missing (apt-get install mosquitto-clients)"
    );
    eprintln!("SKIPPED: mosquitto_pub is not installed (apt-get install mosquitto-clients)");
    None
}

/// `provdb serve` as a child process on `broker` with extra arguments; returns once it has
/// subscribed.
pub fn spawn_serve_with(db: &Path, broker: &Mosquitto, extra: &[&str]) -> Child {
    let url = broker.url().to_string();
    let mut args = vec!["--broker", url.as_str()];
    args.extend_from_slice(extra);
    ServeProcess::start(db, &args, &[]).into_child()
}

/// Publishes `messages` on a thread, QoS 1 unless `configure` says otherwise.
pub fn publish_in_background(
    url: BrokerUrl,
    messages: Vec<Message>,
    configure: impl FnOnce(&mut provdb::publish::PublishOptions) + Send + 'static,
) -> std::thread::JoinHandle<Result<provdb::publish::PublishReport, provdb::publish::PublishError>>
{
    std::thread::spawn(move || {
        let mut o = provdb::publish::PublishOptions::new(url);
        o.qos = 1;
        configure(&mut o);
        provdb::publish::publish_messages(&messages, &o)
    })
}

/// An MQTT subscriber (rumqttc) on its own thread, keeping what it receives.
pub struct Subscriber {
    /// The SUBACK's return codes, one per filter.
    pub granted: Vec<rumqttc::SubscribeReasonCode>,
    received: std::sync::Arc<std::sync::Mutex<Vec<rumqttc::Publish>>>,
    client: rumqttc::Client,
    stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    /// Connects to 127.0.0.1:`port`, subscribes to `filters` at `qos` and waits (10 s at most)
    /// for the SUBACK.
    pub fn connect(
        port: u16,
        client_id: &str,
        filters: &[&str],
        qos: rumqttc::QoS,
        credentials: Option<(&str, &str)>,
    ) -> Subscriber {
        Subscriber::try_connect(port, client_id, filters, qos, credentials)
            .unwrap_or_else(|e| panic!("subscriber {client_id}: {e}"))
    }

    /// [`Subscriber::connect`], or why the connection or subscription failed.
    pub fn try_connect(
        port: u16,
        client_id: &str,
        filters: &[&str],
        qos: rumqttc::QoS,
        credentials: Option<(&str, &str)>,
    ) -> Result<Subscriber, String> {
        use rumqttc::{Event, Packet};
        let mut o = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(16 << 20, 1 << 20);
        if let Some((user, password)) = credentials {
            o.set_credentials(user, password);
        }
        let (client, mut connection) = rumqttc::Client::new(o, 16);
        client
            .subscribe_many(
                filters
                    .iter()
                    .map(|f| rumqttc::SubscribeFilter::new((*f).to_owned(), qos)),
            )
            .expect("queue the SUBSCRIBE");
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (suback_tx, suback_rx) = std::sync::mpsc::channel();
        let thread = {
            let received = received.clone();
            let stopping = stopping.clone();
            std::thread::spawn(move || {
                for event in connection.iter() {
                    match event {
                        Ok(Event::Incoming(Packet::SubAck(ack))) => {
                            let _ = suback_tx.send(Ok(ack.return_codes));
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            received.lock().expect("received").push(p);
                        }
                        Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                        Ok(_) => {}
                        Err(e) => {
                            if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                                break;
                            }
                            let _ = suback_tx.send(Err(e.to_string()));
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            })
        };
        let mut subscriber = Subscriber {
            granted: Vec::new(),
            received,
            client,
            stopping,
            thread: Some(thread),
        };
        subscriber.granted = match suback_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(codes)) => codes,
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(format!("no SUBACK within 10 s ({e})")),
        };
        Ok(subscriber)
    }

    /// What it received so far.
    pub fn received(&self) -> Vec<rumqttc::Publish> {
        self.received.lock().expect("received").clone()
    }

    /// Waits (bounded) until it has received `n` messages; returns them.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<rumqttc::Publish> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "received {} of {n} messages in {timeout:?}: {got:?}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Unsubscribes from `filters` (waits a moment for the UNSUBACK).
    pub fn unsubscribe(&self, filter: &str) {
        self.client
            .unsubscribe(filter)
            .expect("queue the UNSUBSCRIBE");
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Disconnects and returns everything it received.
    pub fn stop(mut self) -> Vec<rumqttc::Publish> {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.client.disconnect();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.received()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.client.disconnect();
    }
}

/// The JSON of an alert message.
pub fn alert_json(p: &rumqttc::Publish) -> serde_json::Value {
    serde_json::from_slice(&p.payload).expect("an alert message is JSON")
}

/// The documents of attack scenarios as MQTT messages, with their ground truths.
pub fn scenario_messages(
    scenarios: &[provdb::simulate::scenarios::Scenario],
) -> (Vec<Message>, Vec<provdb::simulate::scenarios::Truth>) {
    let runs = provdb::simulate::scenarios::simulate_scenarios(
        scenarios,
        &provdb::simulate::scenarios::ScenarioOptions::default(),
    );
    let mut messages = Vec::new();
    let mut truths = Vec::new();
    for run in runs {
        messages.extend(provdb::simulate::to_messages(
            run.documents,
            "camflow/provenance/",
        ));
        truths.push(run.truth);
    }
    (messages, truths)
}

/// `provdb alerts --format json` of an archive.
pub fn archived_alerts(db: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("--db")
        .arg(db)
        .args(["alerts", "--format", "json"])
        .output()
        .expect("run provdb alerts");
    assert!(
        out.status.success(),
        "provdb alerts: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).expect("alerts JSON") {
        serde_json::Value::Array(a) => a,
        other => panic!("not an array: {other}"),
    }
}

/// Checks that the alert messages received are exactly the archive's alerts, one per
/// scenario at least, each of its scenario's rule and on `<prefix><machine>` of its truth.
pub fn assert_alerts_match_scenarios(
    received: &[rumqttc::Publish],
    truths: &[provdb::simulate::scenarios::Truth],
    prefix: &str,
    archived: &[serde_json::Value],
) {
    for p in received {
        assert_eq!(p.qos, rumqttc::QoS::AtLeastOnce, "{p:?}");
    }
    for t in truths {
        let name = t.scenario.name();
        let mine: Vec<_> = received
            .iter()
            .filter(|p| alert_json(p)["rule"] == name)
            .collect();
        assert!(!mine.is_empty(), "no alert message of {name}: {received:?}");
        for p in mine {
            assert_eq!(p.topic, format!("{prefix}{}", t.machine), "{name}");
            assert!(p.topic.ends_with(&t.machine.to_string()));
            assert_eq!(alert_json(p)["machine"], t.machine, "{name}");
        }
    }
    let mut got: Vec<serde_json::Value> = received.iter().map(alert_json).collect();
    let mut want = archived.to_vec();
    let by_id =
        |a: &serde_json::Value, b: &serde_json::Value| a["id"].as_u64().cmp(&b["id"].as_u64());
    got.sort_by(by_id);
    want.sort_by(by_id);
    assert_eq!(
        got, want,
        "the messages are the archive's alerts, each once"
    );
}

/// Publishes attack scenarios' `messages` to `url` while `serve` runs and `soc` subscribes,
/// waits until `soc` has every alert of the archive, stops both, and checks the messages
/// against the scenarios' truths and the archive (see [`assert_alerts_match_scenarios`]).
/// Returns serve's last stderr line.
pub fn publish_scenarios_and_check(
    url: &BrokerUrl,
    messages: &[Message],
    truths: &[provdb::simulate::scenarios::Truth],
    serve: ServeProcess,
    soc: Subscriber,
    db_path: &Path,
    prefix: &str,
) -> String {
    publish(url, messages, 1);
    // Through a broker, publish returns before provdb has stored everything: wait until the
    // subscriber has as many alerts as the archive, one of each scenario at least.
    soc.wait_for(truths.len(), Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    let archived = loop {
        let archived = archived_alerts(db_path);
        let received = soc.received();
        let every_scenario = truths
            .iter()
            .all(|t| archived.iter().any(|a| a["rule"] == t.scenario.name()));
        if every_scenario && received.len() == archived.len() {
            break archived;
        }
        assert!(
            Instant::now() < deadline,
            "{} alert messages, archive: {archived:?}",
            received.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (status, stderr) = serve.stop();
    assert!(status.success(), "{stderr}");
    let received = soc.stop();
    assert_alerts_match_scenarios(&received, truths, prefix, &archived);
    let last = stderr.lines().last().unwrap_or_default().to_owned();
    assert!(
        last.contains(&format!(
            "{} new alerts, {} alert messages published (latency median",
            archived.len(),
            received.len()
        )) && last.contains("p99"),
        "final line: {last}"
    );
    last
}
