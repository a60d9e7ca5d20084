//! `provdb publish`: replays CamFlow log files over MQTT exactly as camflowd sends them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use provdb::ingest::{BrokerAuth, BrokerUrl};
use provdb::publish::{publish_messages, MessagePlan, PublishOptions};

/// Arguments of `provdb publish`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "One W3C document (one log line), or up to 8 KiB of SPADE JSON lines, per \
message; zlib then base64; topic <prefix><machine_id>. Legacy machine descriptions go retained \
to camflow/machines/<id>. With --machines K each file is replayed as K distinct machines \
(identifiers and machine ids rewritten consistently)."
)]
pub struct PublishArgs {
    /// Broker: mqtt://HOST:PORT or mqtts://HOST:PORT.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    pub broker: String,
    /// QoS of the messages.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Messages per second (default: as fast as the broker acknowledges).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Replay every file as K distinct machines.
    #[arg(long, default_value_t = 1)]
    pub machines: u32,
    /// Publish everything this many times (duplicates, as camflowd retries produce).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Provenance topic prefix.
    #[arg(long, default_value = "camflow/provenance/")]
    pub topic_prefix: String,
    /// Broker user name.
    #[arg(long)]
    pub username: Option<String>,
    /// Broker password.
    #[arg(long, env = "PROVDB_MQTT_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// CA certificate (PEM) for mqtts://.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// MQTT client id (default: provdb-publish-<pid>).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Keep the session across reconnections, as camflowd does: messages not yet acknowledged
    /// are resent when the broker (or `provdb serve`) comes back.
    #[arg(long)]
    pub persistent_session: bool,
    /// CamFlow log files (W3C or SPADE JSON).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(_db: &Path, args: PublishArgs) -> anyhow::Result<ExitCode> {
    let url = BrokerUrl::parse(&args.broker).map_err(anyhow::Error::msg)?;
    let plan = MessagePlan {
        topic_prefix: args.topic_prefix.clone(),
        machines: args.machines.max(1),
        ..Default::default()
    };
    let mut messages = Vec::new();
    for f in &args.files {
        messages.extend(
            plan.messages_of_file(f)
                .with_context(|| format!("reading {}", f.display()))?,
        );
    }
    let once = messages.clone();
    for _ in 1..args.repeat.max(1) {
        messages.extend(once.iter().cloned());
    }
    let mut options = PublishOptions::new(url);
    options.qos = args.qos;
    options.rate = args.rate;
    options.auth = BrokerAuth {
        username: args.username,
        password: args.password,
        ca_file: args.ca_file,
    };
    options.ack_timeout = Duration::from_secs(300);
    options.persistent_session = args.persistent_session;
    if let Some(id) = args.client_id {
        options.client_id = id;
    }
    let report = publish_messages(&messages, &options)?;
    eprintln!(
        "published {} messages ({} acknowledged, {:.2} MB JSON, {:.2} MB payload) in {:.2} s: {:.0} msg/s",
        report.messages,
        report.acknowledged,
        report.json_bytes as f64 / 1e6,
        report.payload_bytes as f64 / 1e6,
        report.seconds,
        report.messages as f64 / report.seconds.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
