//! A camflowd-faithful MQTT publisher: turns CamFlow log files into the messages camflowd
//! would have sent (one W3C document, or up to 8 KiB of SPADE JSON lines, per message; zlib
//! then base64; topic `<prefix><machine_id>`; legacy machine descriptions retained on
//! `camflow/machines/<id>`) and publishes them. `provdb publish`, tests and benchmarks use it.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS};

use crate::decode::{classify_line, TextKind};
use crate::ingest::client_errors::{classify, tls_transport, ClientTarget, Failure};
use crate::ingest::TlsSetupError;
use crate::ingest::{BrokerAuth, BrokerUrl};
use crate::workload::{detect_machine, Replicator};

/// camflowd's SPADE buffer: records are grouped into messages of at most this many bytes.
pub const SPADE_MESSAGE_BYTES: usize = 8192;

/// One MQTT message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic.
    pub topic: String,
    /// Payload (base64 of zlib of the JSON text, as camflowd sends it).
    pub payload: Vec<u8>,
    /// Retained (machine descriptions are).
    pub retain: bool,
    /// Machine id the topic names.
    pub machine: u32,
    /// Size of the JSON text before compression.
    pub json_bytes: usize,
}

/// zlib (default level) then standard base64, exactly as camflowd's `compress64encode`.
///
/// ```
/// let p = provdb::publish::encode_payload(br#"{"prefix":{}}"#);
/// let json = provdb::decode::payload::unwrap_payload(&p, 1 << 20)?;
/// assert_eq!(json, br#"{"prefix":{}}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_payload(json: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(json.len() / 4 + 16),
        flate2::Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = z.write_all(json);
    let compressed = z.finish().unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .encode(compressed)
        .into_bytes()
}

/// How log text becomes messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePlan {
    /// Provenance topic prefix (camflowd's `[mqtt] topic`).
    pub topic_prefix: String,
    /// Topic prefix of legacy machine descriptions.
    pub machine_topic_prefix: String,
    /// Replay as this many distinct machines (1 = as recorded).
    pub machines: u32,
}

impl Default for MessagePlan {
    fn default() -> Self {
        MessagePlan {
            topic_prefix: "camflow/provenance/".to_owned(),
            machine_topic_prefix: "camflow/machines/".to_owned(),
            machines: 1,
        }
    }
}

fn is_machine_description(line: &str) -> bool {
    line.contains("\"[machine] ") && !line.contains("\"prov:type\"")
}

fn is_spade_record(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("{\"type\"") || (t.contains("\"annotations\"") && !t.contains("\"prefix\""))
}

impl MessagePlan {
    /// The messages camflowd would have sent for this log text (W3C documents one per line,
    /// SPADE lines grouped up to 8 KiB, base64 payload lines as they are; other lines are
    /// skipped). With `machines = K`, every message is sent once per replica, replica by
    /// replica interleaved.
    ///
    /// ```
    /// let doc = r#"{"prefix":{},"activity":{"cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=":{"prov:type":"task","cf:machine_id":"cf:1958431827"}}}"#;
    /// let plan = provdb::publish::MessagePlan { machines: 3, ..Default::default() };
    /// let msgs = plan.messages(&format!("Starting audit service...\n{doc}\n"));
    /// assert_eq!(msgs.len(), 3);
    /// assert_eq!(msgs[0].topic, "camflow/provenance/1958431827");
    /// assert_ne!(msgs[1].machine, msgs[2].machine);
    /// ```
    pub fn messages(&self, text: &str) -> Vec<Message> {
        let original = text
            .lines()
            .filter_map(detect_machine)
            .find(|m| *m != 0)
            .unwrap_or(0);
        let replicas: Vec<Replicator> = (0..self.machines.max(1))
            .map(|k| Replicator::new(original, k))
            .collect();
        let mut out = Vec::new();
        let mut spade: Vec<String> = vec![String::new(); replicas.len()];
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            match classify_line(line) {
                TextKind::Other => continue,
                TextKind::Payload => {
                    for r in &replicas {
                        out.push(Message {
                            topic: format!("{}{}", self.topic_prefix, r.machine()),
                            payload: line.trim().as_bytes().to_vec(),
                            retain: false,
                            machine: r.machine(),
                            json_bytes: 0,
                        });
                    }
                }
                TextKind::Json if is_spade_record(line) => {
                    for (r, buf) in replicas.iter().zip(spade.iter_mut()) {
                        let rewritten = r.rewrite(line.trim());
                        if !buf.is_empty() && buf.len() + rewritten.len() + 1 > SPADE_MESSAGE_BYTES
                        {
                            out.push(self.document(r.machine(), buf, false));
                            buf.clear();
                        }
                        buf.push_str(&rewritten);
                        buf.push('\n');
                    }
                }
                TextKind::Json => {
                    let description = is_machine_description(line);
                    for r in &replicas {
                        let doc = r.rewrite(line.trim());
                        out.push(self.document(r.machine(), &doc, description));
                    }
                }
            }
        }
        for (r, buf) in replicas.iter().zip(spade.iter()) {
            if !buf.is_empty() {
                out.push(self.document(r.machine(), buf, false));
            }
        }
        out
    }

    fn document(&self, machine: u32, json: &str, description: bool) -> Message {
        let prefix = if description {
            &self.machine_topic_prefix
        } else {
            &self.topic_prefix
        };
        Message {
            topic: format!("{prefix}{machine}"),
            payload: encode_payload(json.as_bytes()),
            retain: description,
            machine,
            json_bytes: json.len(),
        }
    }

    /// Messages of a file (see [`MessagePlan::messages`]).
    pub fn messages_of_file(&self, path: &Path) -> std::io::Result<Vec<Message>> {
        let bytes = std::fs::read(path)?;
        Ok(self.messages(&String::from_utf8_lossy(&bytes)))
    }
}

/// How to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Broker.
    pub broker: BrokerUrl,
    /// Credentials / CA file.
    pub auth: BrokerAuth,
    /// QoS 0, 1 or 2.
    pub qos: u8,
    /// Messages per second (`None`: as fast as the broker takes them).
    pub rate: Option<f64>,
    /// MQTT client id.
    pub client_id: String,
    /// Give up waiting for the broker's acknowledgements after this long.
    pub ack_timeout: Duration,
    /// Keep the MQTT session across reconnections (clean session off), as camflowd does:
    /// what was not acknowledged is resent after the broker or provdb restarts.
    pub persistent_session: bool,
}

impl PublishOptions {
    /// Defaults: QoS 1, no rate limit.
    pub fn new(broker: BrokerUrl) -> PublishOptions {
        PublishOptions {
            broker,
            auth: BrokerAuth::default(),
            qos: 1,
            rate: None,
            client_id: format!("provdb-publish-{}", std::process::id()),
            ack_timeout: Duration::from_secs(120),
            persistent_session: false,
        }
    }
}

/// What a publish run did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PublishReport {
    /// Messages handed to the broker.
    pub messages: u64,
    /// Messages the broker acknowledged (QoS 1/2) or that were written (QoS 0).
    pub acknowledged: u64,
    /// Payload bytes.
    pub payload_bytes: u64,
    /// JSON bytes before compression.
    pub json_bytes: u64,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Errors of publishing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The broker could not be reached or did not acknowledge in time: the message names the
    /// broker and the cause.
    #[error("{0}")]
    Broker(String),
    /// TLS to the broker cannot be set up (an unusable CA file, no system certificates).
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// The network thread could not be started.
    #[error("cannot start the network thread: {0}")]
    Thread(std::io::Error),
}

/// Publishes messages in order and waits until the broker has acknowledged them all.
pub fn publish_messages(
    messages: &[Message],
    options: &PublishOptions,
) -> Result<PublishReport, PublishError> {
    let url = &options.broker;
    let mut o = MqttOptions::new(options.client_id.clone(), url.host.clone(), url.port);
    o.set_keep_alive(Duration::from_secs(20))
        .set_clean_session(!options.persistent_session)
        .set_max_packet_size(1 << 20, 64 << 20)
        .set_inflight(200);
    if let Some(u) = &options.auth.username {
        o.set_credentials(u.clone(), options.auth.password.clone().unwrap_or_default());
    }
    let target = ClientTarget {
        url: url.clone(),
        auth: options.auth.clone(),
        client_id: options.client_id.clone(),
    };
    if url.tls {
        o.set_transport(
            tls_transport(url, options.auth.ca_file.as_deref()).map_err(PublishError::Tls)?,
        );
    }
    let qos = match options.qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    let (client, mut connection) = Client::new(o, 256);
    let acked = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let last_failure = Arc::new(parking_lot::Mutex::new(None::<Failure>));
    let net = {
        let (acked, connected, failures, last_failure) = (
            acked.clone(),
            connected.clone(),
            failures.clone(),
            last_failure.clone(),
        );
        std::thread::Builder::new()
            .name("publish-net".to_owned())
            .spawn(move || {
                for event in connection.iter() {
                    match event {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            connected.store(true, Ordering::SeqCst);
                            failures.store(0, Ordering::SeqCst);
                        }
                        Ok(Event::Incoming(Packet::PubAck(_)))
                        | Ok(Event::Incoming(Packet::PubComp(_))) => {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Event::Outgoing(Outgoing::Publish(_))) if qos == QoS::AtMostOnce => {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                        Ok(_) => {}
                        Err(e) => {
                            let failure = classify(&e, &target);
                            let stop = matches!(failure, Failure::Permanent(_))
                                || failures.fetch_add(1, Ordering::SeqCst) > 30;
                            if !stop {
                                tracing::warn!("{}; retrying", failure.message());
                            }
                            *last_failure.lock() = Some(failure);
                            if stop {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(500));
                        }
                    }
                }
            })
            .map_err(PublishError::Thread)?
    };
    let start = Instant::now();
    let mut report = PublishReport::default();
    for (i, m) in messages.iter().enumerate() {
        if let Some(rate) = options.rate.filter(|r| *r > 0.0) {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        // The network thread ends on a permanent failure or after many transient ones; its
        // last error (which names the broker) says why.
        let publish_error = if net.is_finished() {
            Some("the connection ended".to_owned())
        } else {
            client
                .publish(m.topic.clone(), qos, m.retain, m.payload.clone())
                .err()
                .map(|e| e.to_string())
        };
        if let Some(e) = publish_error {
            let _ = net.join();
            return Err(PublishError::Broker(match last_failure.lock().as_ref() {
                Some(failure) => failure.message().to_owned(),
                None => format!("publishing to the broker at {url} failed: {e}"),
            }));
        }
        report.messages += 1;
        report.payload_bytes += m.payload.len() as u64;
        report.json_bytes += m.json_bytes as u64;
    }
    let deadline = Instant::now() + options.ack_timeout;
    while acked.load(Ordering::SeqCst) < report.messages {
        if Instant::now() > deadline || net.is_finished() {
            let _ = client.disconnect();
            if let Some(Failure::Permanent(message)) = last_failure.lock().as_ref() {
                return Err(PublishError::Broker(message.clone()));
            }
            return Err(PublishError::Broker(format!(
                "the broker at {url} acknowledged {} of {} messages ({})",
                acked.load(Ordering::SeqCst),
                report.messages,
                last_failure
                    .lock()
                    .as_ref()
                    .map_or("no error reported", Failure::message)
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    report.acknowledged = acked.load(Ordering::SeqCst);
    report.seconds = start.elapsed().as_secs_f64();
    let _ = client.disconnect();
    let _ = net.join();
    Ok(report)
}
