//! `provdb serve`: the MQTT ingest service.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use provdb::ingest::{self, BrokerUrl, IngestConfig, IngestControl, MqttFileConfig, Shutdown};
use provdb::{Database, DatabaseOptions};

/// Arguments of `provdb serve`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Without --broker, provdb's own MQTT listener takes camflowd's connections on \
--listen (MQTT 3.1.1) and acknowledges a publish (PUBACK/PUBREC) only once it is durably \
stored, so a kill -9 loses nothing a publisher was told is safe. On an address other than \
loopback it requires --password-file (mosquitto_passwd format) or --allow-anonymous; \
--tls-cert/--tls-key make it speak TLS. With --broker, provdb subscribes at that broker with \
a persistent session and acknowledges after the durable write. Undecodable messages go to the \
quarantine (`provdb quarantine`); a message that crashes provdb twice is quarantined \
undecoded; machines are listed by `provdb machines`. Stop with Ctrl-C / SIGTERM (stores and \
acknowledges what is in flight, then exits).

Alerts: each new alert the detection rules raise (see `provdb rules list`; a repeat on the \
same object only counts up) is published, once durably stored with the batch that raised it, \
as the JSON of `provdb alerts --format json` (one object) on <alert-topic-prefix><machine id> \
(`unknown` when the alert has no machine), default camflow/alerts/<machine>, at QoS 1. With \
--broker it goes to that broker, so any MQTT client there can subscribe (e.g. mosquitto_sub \
-t 'camflow/alerts/#'). With the embedded listener, clients subscribe at provdb itself: \
filters (+ and # wildcards) that can match an alert topic are granted at QoS 0 or 1, any \
other is refused; subscribers need the same password and TLS as publishers. Delivery is live \
(to subscribers connected at the time; a slow subscriber's excess is dropped and logged, \
never holding ingest up); the archive (`provdb alerts`) is the durable record. The final \
line reports alerts published and their latency (durable write -> handed to the broker \
client or subscriber socket), median and p99."
)]
pub struct ServeArgs {
    /// Listen address of the embedded MQTT listener (ignored with --broker).
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub listen: SocketAddr,
    /// Embedded listener: only users of this mosquitto_passwd file may connect (PBKDF2
    /// `$7$`, SHA-512 `$6$` or plain `user:password` lines).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Embedded listener: PEM certificate (chain); the listener speaks TLS (MQTT over TLS).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Embedded listener: PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Embedded listener: accept clients without a password on a non-loopback address.
    #[arg(long)]
    pub allow_anonymous: bool,
    /// External broker instead of the embedded one: mqtt://HOST:PORT or mqtts://HOST:PORT.
    #[arg(long)]
    pub broker: Option<String>,
    /// camflowd-style ini file whose [mqtt] section gives address, username, password, qos,
    /// topic (and cafile); command-line options override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Broker user name.
    #[arg(long)]
    pub username: Option<String>,
    /// Broker password.
    #[arg(long, env = "PROVDB_MQTT_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// CA certificate (PEM) for mqtts://.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Provenance topic prefix; the machine id follows it.
    #[arg(long)]
    pub topic_prefix: Option<String>,
    /// Topic prefix of legacy machine descriptions (camflowd <= v0.2.2); empty disables.
    #[arg(long, default_value = "camflow/machines/")]
    pub machine_topic_prefix: String,
    /// Join MQTT shared-subscription group GROUP ($share/GROUP/...) to split a fleet between
    /// several provdb nodes.
    #[arg(long)]
    pub share_group: Option<String>,
    /// MQTT client id (the broker keeps the persistent session under it).
    #[arg(long, default_value = "provdb-serve")]
    pub client_id: String,
    /// Subscription QoS (1 or 2 for at-least-once delivery).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: Option<u8>,
    /// Start with a clean session (the broker forgets messages queued for provdb).
    #[arg(long)]
    pub clean_session: bool,
    /// Longest time (ms) a message waits to be grouped into a durable write. A write goes
    /// sooner when no further message is on its way and the previous write is durable.
    #[arg(long, default_value_t = 10)]
    pub batch_latency_ms: u64,
    /// Most messages per durable write.
    #[arg(long, default_value_t = 2048)]
    pub batch_messages: usize,
    /// Decoder threads (default: number of cores).
    #[arg(long)]
    pub decode_threads: Option<usize>,
    /// Cap on the inflated size of one payload, in bytes (decompression-bomb guard): larger
    /// ones are quarantined.
    #[arg(long, default_value_t = provdb::decode::DEFAULT_MAX_INFLATED)]
    pub max_inflated: usize,
    /// Seconds between throughput lines on stderr (0: none).
    #[arg(long, default_value_t = 10)]
    pub report_secs: u64,
    /// Topic prefix of published alerts: each new alert goes out as JSON on PREFIX<machine
    /// id>, at QoS 1, once durable (empty: publish none).
    #[arg(long, default_value = "camflow/alerts/", value_name = "PREFIX")]
    pub alert_topic_prefix: String,
    /// Fold the adjacency tables into the snapshot (what `provdb compact` does last) once at
    /// least EDGES edges were written since the last fold and they are at least a quarter of
    /// those folded, looked at every minute; 0: never. Queries answer their first touch
    /// 3-4x faster on folded edges. Ingest waits only while a fold plans (a flush) and names
    /// its new generation; the file is written and the tables compacted beside it.
    #[arg(long, default_value_t = 1_000_000, value_name = "EDGES")]
    pub auto_fold_edges: u64,
    #[command(flatten)]
    pub rules: super::rules::RulesArgs,
}

/// How often `serve` looks at its fold backlog: `default`, or in debug builds
/// `PROVDB_TEST_FOLD_CHECK_MS`, so that a test sees a fold within seconds.
fn fold_check_interval(default: Duration) -> Duration {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("PROVDB_TEST_FOLD_CHECK_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Duration::from_millis(ms);
    }
    default
}

fn build_config(args: &ServeArgs) -> anyhow::Result<IngestConfig> {
    let file = match &args.config {
        Some(p) => MqttFileConfig::read(p).with_context(|| format!("reading {}", p.display()))?,
        None => MqttFileConfig::default(),
    };
    let broker = args.broker.clone().or(file.address.clone());
    let mut config = match broker {
        Some(url) => IngestConfig::external(BrokerUrl::parse(&url).map_err(anyhow::Error::msg)?),
        None => IngestConfig::embedded(args.listen),
    };
    config.listener = ingest::ListenerSecurity {
        password_file: args.password_file.clone(),
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        allow_anonymous: args.allow_anonymous,
    };
    config.auth.username = args.username.clone().or(file.username);
    config.auth.password = args.password.clone().or(file.password);
    config.auth.ca_file = args.ca_file.clone().or(file.ca_file);
    if let Some(p) = args.topic_prefix.clone().or(file.topic) {
        config.topic_prefix = p;
    }
    config.machine_topic_prefix = Some(args.machine_topic_prefix.clone()).filter(|p| !p.is_empty());
    config.share_group = args.share_group.clone();
    config.client_id = args.client_id.clone();
    config.qos = args.qos.or(file.qos).unwrap_or(1).min(2);
    config.persistent_session = !args.clean_session;
    config.batch_latency = Duration::from_millis(args.batch_latency_ms);
    config.batch_max_messages = args.batch_messages.max(1);
    if let Some(n) = args.decode_threads {
        config.decode_threads = n.max(1);
    }
    config.alert_topic_prefix = args.alert_topic_prefix.clone();
    config.auto_fold = (args.auto_fold_edges > 0).then(|| {
        let every = ingest::AutoFold::default().check_interval;
        ingest::AutoFold::new(args.auto_fold_edges, fold_check_interval(every))
    });
    // The CLI prints its own report line (visible at the default log level).
    config.report_interval = None;
    Ok(config)
}

/// Installs SIGINT/SIGTERM handling: the first signal shuts down gracefully, a second one
/// exits at once. The handlers are registered before this returns, so a signal sent as soon
/// as serve reports it is listening is never the default (immediate, unflushed) death.
fn watch_signals(shutdown: Shutdown) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut signals = {
        let _context = rt.enter();
        super::signals::StopSignals::install()?
    };
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            rt.block_on(async move {
                signals.recv().await;
                eprintln!(
                    "provdb serve: stopping (flushing and acknowledging; signal again to exit now)"
                );
                shutdown.trigger();
                signals.recv().await;
                std::process::exit(130);
            });
        })?;
    Ok(())
}

/// The alerts part of the final line: new alerts, messages published and their latency.
fn alert_report(t: &ingest::StatsSnapshot) -> String {
    if t.alerts_new == 0 && t.alerts_published == 0 && t.alerts_dropped == 0 {
        return String::new();
    }
    let mut out = format!(
        "; {} new alerts, {} alert messages published",
        t.alerts_new, t.alerts_published
    );
    if let (Some(median), Some(p99)) = (t.alert_latency_median, t.alert_latency_p99) {
        out.push_str(&format!(
            " (latency median {:.2} ms, p99 {:.2} ms)",
            median.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        ));
    }
    if t.alerts_dropped > 0 {
        out.push_str(&format!(", {} dropped", t.alerts_dropped));
    }
    out
}

pub fn run(db_path: &Path, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = build_config(&args)?;
    let options = DatabaseOptions {
        max_inflated: args.max_inflated,
        detection: args.rules.detection()?,
        ..DatabaseOptions::default()
    };
    let db = Database::open_with(db_path, options)
        .with_context(|| format!("opening {}", db_path.display()))?;
    let control = IngestControl::new();
    watch_signals(control.shutdown.clone())?;
    let source = match &config.broker {
        ingest::BrokerTarget::Embedded { listen } => {
            let scheme = if args.tls_cert.is_some() {
                "mqtts"
            } else {
                "mqtt"
            };
            format!("the embedded MQTT listener on {scheme}://{listen}")
        }
        ingest::BrokerTarget::External(url) => format!("broker {url}"),
    };
    eprintln!(
        "provdb serve: ingesting {} from {source} into {}",
        config.filters().join(", "),
        db_path.display()
    );
    if !config.alert_topic_prefix.is_empty() {
        eprintln!(
            "provdb serve: new alerts are published on {}<machine id>",
            config.alert_topic_prefix
        );
    }
    let reporter = {
        let stats = control.stats.clone();
        let shutdown = control.shutdown.clone();
        let every = Duration::from_secs(args.report_secs);
        let report = args.report_secs > 0;
        let embedded = matches!(config.broker, ingest::BrokerTarget::Embedded { .. });
        std::thread::spawn(move || {
            let mut last = stats.snapshot();
            let mut at = Instant::now();
            let mut subscribed = 0;
            let mut listening = false;
            while !shutdown.is_triggered() {
                std::thread::sleep(Duration::from_millis(100));
                let snapshot = stats.snapshot();
                if embedded {
                    if snapshot.ready && !listening {
                        listening = true;
                        eprintln!("provdb serve: listening (ready to receive)");
                    }
                } else if snapshot.subscriptions > subscribed {
                    subscribed = snapshot.subscriptions;
                    eprintln!("provdb serve: connected and subscribed");
                }
                if !report || at.elapsed() < every {
                    continue;
                }
                let now = stats.snapshot();
                let secs = at.elapsed().as_secs_f64();
                eprintln!(
                    "provdb serve: {:>8.0} msg/s {:>10.0} records/s {:>7.2} MB/s JSON | total {} msgs, {} records, {} quarantined{}",
                    (now.stored - last.stored) as f64 / secs,
                    (now.records - last.records) as f64 / secs,
                    (now.json_bytes - last.json_bytes) as f64 / secs / 1e6,
                    now.stored,
                    now.records,
                    now.quarantined,
                    if now.connected { "" } else { " (broker disconnected)" }
                );
                last = now;
                at = Instant::now();
            }
        })
    };
    let result = ingest::run(&db, &config, &control);
    control.shutdown.trigger();
    let _ = reporter.join();
    db.close().context("closing the database")?;
    let totals = result?;
    eprintln!(
        "provdb serve: stopped; {} messages stored ({} records), {} quarantined{}",
        totals.stored,
        totals.records,
        totals.quarantined,
        alert_report(&totals)
    );
    Ok(ExitCode::SUCCESS)
}
