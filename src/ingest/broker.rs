//! The embedded MQTT broker (rumqttd), started inside `provdb serve` when no external broker
//! is given.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

use super::IngestError;

/// Largest payload the embedded broker accepts (camflowd documents are well below 1 MiB).
pub const EMBEDDED_MAX_PAYLOAD: usize = 16 << 20;

/// The rumqttd configuration of the embedded broker: one MQTT 3.1.1 listener, no auth.
pub fn embedded_config(listen: SocketAddr) -> Config {
    let server = ServerSettings {
        name: "provdb-v4".to_owned(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: EMBEDDED_MAX_PAYLOAD,
            max_inflight_count: 1000,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 1000,
            max_segment_size: 32 << 20,
            max_segment_count: 8,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Default::default()
    }
}

/// Starts the embedded broker on `listen` and waits until it accepts connections. The broker
/// runs on its own threads until the process ends.
pub fn start_embedded(listen: SocketAddr) -> Result<(), IngestError> {
    // Fail clearly when the port is taken (rumqttd would only log it on its own thread).
    drop(TcpListener::bind(listen).map_err(|e| {
        IngestError::Broker(format!(
            "cannot listen on {listen} for the embedded broker: {e}"
        ))
    })?);
    let config = embedded_config(listen);
    std::thread::Builder::new()
        .name("mqtt-broker".to_owned())
        .spawn(move || {
            let mut broker = Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!("embedded broker stopped: {e}");
            }
        })
        .map_err(|e| IngestError::Broker(format!("cannot start the embedded broker: {e}")))?;
    let target = connect_address(listen);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok() {
            tracing::info!("embedded MQTT broker listening on {listen}");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(IngestError::Broker(format!(
        "the embedded broker did not start listening on {listen}"
    )))
}

/// The address a local client uses to reach a listener (`0.0.0.0` -> loopback).
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
