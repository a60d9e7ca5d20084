//! Configuration of the ingest service ([`IngestConfig`]) and broker addresses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::listener::ListenerSecurity;

/// Where the service gets its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerTarget {
    /// Listen on this address with provdb's own MQTT listener, which acknowledges a publish
    /// only once it is durable (see [`crate::ingest::listener`]).
    Embedded {
        /// Listen address, e.g. `127.0.0.1:1883`.
        listen: SocketAddr,
    },
    /// Connect to an external broker (e.g. mosquitto).
    External(BrokerUrl),
}

/// A parsed broker URL: `mqtt://HOST:PORT` or `mqtts://HOST:PORT` (`tcp://`, `ssl://` and a
/// bare `HOST:PORT`, as in camflowd.ini, are accepted too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or address.
    pub host: String,
    /// TCP port (default 1883, or 8883 with TLS).
    pub port: u16,
    /// TLS (mqtts://).
    pub tls: bool,
}

impl BrokerUrl {
    /// Parses a broker URL.
    ///
    /// ```
    /// use provdb::ingest::BrokerUrl;
    /// let u = BrokerUrl::parse("mqtt://127.0.0.1:1884")?;
    /// assert_eq!((u.host.as_str(), u.port, u.tls), ("127.0.0.1", 1884, false));
    /// assert_eq!(BrokerUrl::parse("mqtts://broker.example")?.port, 8883);
    /// assert_eq!(BrokerUrl::parse("localhost:1883")?.host, "localhost");
    /// assert!(BrokerUrl::parse("http://x").is_err());
    /// # Ok::<(), String>(())
    /// ```
    pub fn parse(text: &str) -> Result<BrokerUrl, String> {
        let text = text.trim();
        let (tls, rest) = if let Some(r) = text.strip_prefix("mqtt://") {
            (false, r)
        } else if let Some(r) = text.strip_prefix("tcp://") {
            (false, r)
        } else if let Some(r) = text.strip_prefix("mqtts://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("ssl://") {
            (true, r)
        } else if text.contains("://") {
            return Err(format!(
                "unsupported broker URL `{text}`: use mqtt://HOST:PORT or mqtts://HOST:PORT"
            ));
        } else {
            (false, text)
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() {
            return Err(format!("broker URL `{text}` has no host"));
        }
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("broker URL `{text}`: invalid port `{p}`"))?;
                (
                    h.trim_start_matches('[').trim_end_matches(']').to_owned(),
                    port,
                )
            }
            _ => (rest.to_owned(), default_port),
        };
        if host.is_empty() {
            return Err(format!("broker URL `{text}` has no host"));
        }
        Ok(BrokerUrl { host, port, tls })
    }
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// Credentials and TLS material for an external broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerAuth {
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// PEM file of the CA that signed the broker's certificate (mqtts://).
    pub ca_file: Option<PathBuf>,
}

/// The address a local client uses to reach a listener (`0.0.0.0` -> loopback).
///
/// ```
/// let a = provdb::ingest::config::connect_address("0.0.0.0:1883".parse()?);
/// assert_eq!(a.to_string(), "127.0.0.1:1883");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn connect_address(listen: SocketAddr) -> SocketAddr {
    let mut a = listen;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

/// Settings of `provdb serve`.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Broker to ingest from.
    pub broker: BrokerTarget,
    /// Credentials / TLS for an external broker.
    pub auth: BrokerAuth,
    /// Password file and TLS of the embedded listener.
    pub listener: ListenerSecurity,
    /// MQTT client id of the service (a persistent session is kept under it).
    pub client_id: String,
    /// Provenance topic prefix (camflowd's `[mqtt] topic`), default `camflow/provenance/`.
    pub topic_prefix: String,
    /// Legacy machine-description topic prefix (camflowd <= v0.2.2), default `camflow/machines/`.
    /// `None` disables it.
    pub machine_topic_prefix: Option<String>,
    /// Shared-subscription group (`$share/GROUP/...`) so several nodes split one fleet.
    pub share_group: Option<String>,
    /// QoS of the subscriptions (1 or 2 for at-least-once; 0 loses messages on crashes).
    pub qos: u8,
    /// Keep a persistent session (clean session off) so the broker queues messages while the
    /// service is down.
    pub persistent_session: bool,
    /// Decoder threads (default: the number of cores).
    pub decode_threads: usize,
    /// Capacity of the queues between the stages, in messages.
    pub queue_capacity: usize,
    /// Most messages grouped into one durable write.
    pub batch_max_messages: usize,
    /// Most records grouped into one durable write.
    pub batch_max_records: usize,
    /// Longest a message waits for its batch to fill (a batch closes sooner when nothing more
    /// is on its way and no earlier write is still committing: group commit).
    pub batch_latency: Duration,
    /// Interval of the one-line throughput report (`None`: no report).
    pub report_interval: Option<Duration>,
    /// Most messages the broker may send before acknowledgements (MQTT inflight window the
    /// client allows; the broker's own limit may be lower).
    pub inflight: u16,
    /// Topic prefix of published alerts, default `camflow/alerts/`: each new alert goes out as
    /// JSON on `<prefix><machine id>` (`unknown` when the alert has no machine), at QoS 1,
    /// once durable, on the external broker or to the embedded listener's subscribers. Empty:
    /// no alert is published (they are still in the archive).
    pub alert_topic_prefix: String,
    /// When the service folds the adjacency tables into the snapshot on its own (`None`:
    /// never; `provdb compact` still does).
    pub auto_fold: Option<AutoFold>,
}

/// When `serve` folds on its own ([`provdb_storage::Store::fold_adjacency`]).
///
/// A first touch of an edge written since the last fold reads RocksDB's blocks (1.2-1.8x
/// SQLite's first touch on the 1M-edge bench, against 0.3-0.4x once folded). Folding rewrites
/// the whole snapshot, and ingest waits while it runs, so the service folds once the edges
/// written since are both at least [`AutoFold::min_edges`] and at least a quarter of those
/// folded: at most a fifth of a large archive is then unfolded, and each edge is rewritten
/// about five times over the archive's life (the backlog grows geometrically), not once per
/// fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AutoFold {
    /// Fewest unfolded edges worth a fold.
    pub min_edges: u64,
    /// How often the backlog is looked at.
    pub check_interval: Duration,
}

impl AutoFold {
    /// Folds are due once unfolded edges reach this fraction (1/N) of the folded ones.
    pub const GROWTH_DIVISOR: u64 = 4;

    /// Folding after `min_edges` edges, checked every `check_interval`.
    pub fn new(min_edges: u64, check_interval: Duration) -> AutoFold {
        AutoFold {
            min_edges,
            check_interval,
        }
    }

    /// Whether a fold is due with `folded` edges in the snapshot and `unfolded` written since.
    ///
    /// ```
    /// use provdb::ingest::AutoFold;
    /// let policy = AutoFold::new(1_000, std::time::Duration::from_secs(60));
    /// assert!(!policy.due(0, 999));
    /// assert!(policy.due(0, 1_000));
    /// // Beside 8,000 folded edges, 1,000 new ones are not yet a quarter.
    /// assert!(!policy.due(8_000, 1_999));
    /// assert!(policy.due(8_000, 2_000));
    /// ```
    pub fn due(&self, folded: u64, unfolded: u64) -> bool {
        unfolded > 0 && unfolded >= self.min_edges && unfolded >= folded / Self::GROWTH_DIVISOR
    }
}

impl Default for AutoFold {
    /// After a million edges, looked at every minute.
    fn default() -> AutoFold {
        AutoFold::new(1_000_000, Duration::from_secs(60))
    }
}

impl IngestConfig {
    /// Defaults with the embedded broker on `127.0.0.1:1883`.
    ///
    /// ```
    /// let c = provdb::ingest::IngestConfig::embedded("127.0.0.1:18830".parse()?);
    /// assert_eq!(c.topic_prefix, "camflow/provenance/");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn embedded(listen: SocketAddr) -> IngestConfig {
        IngestConfig::new(BrokerTarget::Embedded { listen })
    }

    /// Defaults for an external broker.
    pub fn external(url: BrokerUrl) -> IngestConfig {
        IngestConfig::new(BrokerTarget::External(url))
    }

    fn new(broker: BrokerTarget) -> IngestConfig {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        IngestConfig {
            broker,
            auth: BrokerAuth::default(),
            listener: ListenerSecurity::default(),
            client_id: "provdb-serve".to_owned(),
            topic_prefix: "camflow/provenance/".to_owned(),
            machine_topic_prefix: Some("camflow/machines/".to_owned()),
            share_group: None,
            qos: 1,
            persistent_session: true,
            decode_threads: cores.clamp(1, 16),
            queue_capacity: 1024,
            batch_max_messages: 2048,
            batch_max_records: 100_000,
            batch_latency: Duration::from_millis(10),
            report_interval: Some(Duration::from_secs(10)),
            inflight: 1000,
            alert_topic_prefix: "camflow/alerts/".to_owned(),
            auto_fold: Some(AutoFold::default()),
        }
    }

    /// Subscription filters for the provenance and machine topics (with `$share/` when a group
    /// is set).
    ///
    /// ```
    /// let mut c = provdb::ingest::IngestConfig::embedded("127.0.0.1:1883".parse()?);
    /// assert_eq!(c.filters(), ["camflow/provenance/+", "camflow/machines/+"]);
    /// c.share_group = Some("g".into());
    /// c.machine_topic_prefix = None;
    /// assert_eq!(c.filters(), ["$share/g/camflow/provenance/+"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn filters(&self) -> Vec<String> {
        let mut out = vec![filter_for_prefix(&self.topic_prefix)];
        if let Some(m) = &self.machine_topic_prefix {
            out.push(filter_for_prefix(m));
        }
        if let Some(g) = &self.share_group {
            out = out.into_iter().map(|f| format!("$share/{g}/{f}")).collect();
        }
        out
    }
}

/// The MQTT filter that covers every topic `PREFIX<machine_id>`: `PREFIX+` when the prefix ends
/// with `/`, otherwise the enclosing level's `+` (topics are then checked by prefix).
fn filter_for_prefix(prefix: &str) -> String {
    if prefix.is_empty() {
        return "+".to_owned();
    }
    if prefix.ends_with('/') {
        return format!("{prefix}+");
    }
    match prefix.rfind('/') {
        Some(i) => format!("{}+", &prefix[..=i]),
        None => "+".to_owned(),
    }
}

/// Settings read from a camflowd-style ini file's `[mqtt]` section (`address`, `username`,
/// `password`, `qos`, `topic`, plus provdb's `cafile`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MqttFileConfig {
    /// `address` (broker URL or HOST:PORT).
    pub address: Option<String>,
    /// `username`.
    pub username: Option<String>,
    /// `password`.
    pub password: Option<String>,
    /// `qos`.
    pub qos: Option<u8>,
    /// `topic` (prefix).
    pub topic: Option<String>,
    /// `cafile`.
    pub ca_file: Option<PathBuf>,
}

/// Largest `--config` file read: camflowd.ini is a few hundred bytes.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

impl MqttFileConfig {
    /// Parses the `[mqtt]` section of ini text (other sections are ignored; a file without
    /// sections is read as a whole).
    ///
    /// ```
    /// let c = provdb::ingest::MqttFileConfig::parse("[general]\noutput=mqtt\n[mqtt]\naddress=localhost:1883\nusername=cam\npassword=secret\nqos=2\n");
    /// assert_eq!(c.address.as_deref(), Some("localhost:1883"));
    /// assert_eq!((c.username.as_deref(), c.qos), (Some("cam"), Some(2)));
    /// ```
    pub fn parse(text: &str) -> MqttFileConfig {
        let mut out = MqttFileConfig::default();
        let mut in_mqtt = !text.lines().any(|l| l.trim_start().starts_with('['));
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                in_mqtt = line.eq_ignore_ascii_case("[mqtt]");
                continue;
            }
            if !in_mqtt {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"').to_owned();
            match k.trim().to_ascii_lowercase().as_str() {
                "address" => out.address = Some(v),
                "username" if !v.is_empty() => out.username = Some(v),
                "password" if !v.is_empty() => out.password = Some(v),
                "qos" => out.qos = v.parse().ok(),
                "topic" => out.topic = Some(v),
                "cafile" | "ca_file" => out.ca_file = Some(PathBuf::from(v)),
                _ => {}
            }
        }
        out
    }

    /// Reads and parses a file of at most [`MAX_CONFIG_BYTES`] (a larger one, such as a
    /// device or a wrong path, is an `InvalidData` error rather than a read without end).
    pub fn read(path: &Path) -> std::io::Result<MqttFileConfig> {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        std::fs::File::open(path)?
            .take(MAX_CONFIG_BYTES as u64 + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} is larger than {MAX_CONFIG_BYTES} bytes: not a camflowd ini file",
                    path.display()
                ),
            ));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} is not UTF-8 text (invalid byte at offset {})",
                    path.display(),
                    e.utf8_error().valid_up_to()
                ),
            )
        })?;
        Ok(MqttFileConfig::parse(&text))
    }
}
