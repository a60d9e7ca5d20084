//! The embedded listener under hostile bytes: valid MQTT conversations (CONNECT, PUBLISH at
//! every QoS, PUBREL, PINGREQ, SUBSCRIBE, DISCONNECT) encoded with rumqttc's codec, then
//! mutated (byte flips, truncation, splices of random bytes, oversized lengths), sent on
//! fresh connections. No input may panic a connection task or stop the service, and a
//! well-behaved publisher must still be served afterwards.
//!
//! `PROVDB_FUZZ_CASES=N` sets the number of cases (default 48); the longer campaign is
//! `PROVDB_FUZZ_CASES=20000 cargo test --release --test listener_fuzz -- --nocapture`.

mod common;
mod mqtt_support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mqtt_support::*;
use proptest::prelude::*;
use provdb::ingest::{BrokerUrl, IngestConfig};
use provdb::Database;
use rumqttc::{Connect, Packet, PubRel, Publish, QoS, Subscribe};

fn encode(packets: &[Packet]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for p in packets {
        p.write(&mut out, 1 << 20).expect("encode a test packet");
    }
    out.to_vec()
}

/// A plausible conversation: CONNECT then a mix of packets.
fn conversation(seed: u64, client: &str) -> Vec<Packet> {
    let mut connect = Connect::new(client);
    connect.clean_session = seed % 2 == 0;
    if seed % 3 == 0 {
        connect.set_login("user", "password");
    }
    let mut packets = vec![Packet::Connect(connect)];
    let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
    for i in 0..(seed % 5) {
        let mut p = Publish::new(
            format!("camflow/provenance/{}", 1000 + (seed + i) % 7),
            qos[((seed + i) % 3) as usize],
            provdb::publish::encode_payload(b"{\"prefix\":{}}"),
        );
        p.pkid = (i + 1) as u16;
        packets.push(Packet::Publish(p));
    }
    packets.push(Packet::PubRel(PubRel::new(1)));
    packets.push(Packet::PingReq);
    if seed % 4 == 0 {
        packets.push(Packet::Subscribe(Subscribe::new(
            "camflow/#",
            QoS::AtLeastOnce,
        )));
    }
    packets.push(Packet::Disconnect);
    packets
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Truncate { at: usize },
    Splice { at: usize, bytes: Vec<u8> },
    HugeLength { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(at, bytes)| Mutation::Splice { at, bytes }),
        any::<usize>().prop_map(|at| Mutation::HugeLength { at }),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Flip { at, mask } => {
                if let Some(b) = bytes.get_mut(at % len) {
                    *b ^= mask;
                }
            }
            Mutation::Truncate { at } => bytes.truncate(at % len),
            Mutation::Splice { at, bytes: extra } => {
                let at = (at % len).min(bytes.len());
                bytes.splice(at..at, extra.iter().copied());
            }
            // A remaining length of 0xFF 0xFF 0xFF 0x7F (268 MB) right after a header byte.
            Mutation::HugeLength { at } => {
                let at = (at % len).min(bytes.len());
                bytes.splice(at..at, [0x30, 0xFF, 0xFF, 0xFF, 0x7F]);
            }
        }
    }
    bytes
}

/// Sends `bytes` on a fresh connection and reads whatever comes back, briefly.
fn send(port: u16, bytes: &[u8]) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = s.write_all(bytes);
    let mut sink = [0u8; 4096];
    while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
}

#[test]
fn hostile_bytes_never_panic_or_stop_the_listener() {
    let panics = Arc::new(AtomicUsize::new(0));
    {
        let panics = panics.clone();
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            panics.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = test_config(
        IngestConfig::embedded(format!("127.0.0.1:{port}").parse().expect("addr")),
        "fuzz",
    );
    let service = Service::start(Database::open(tmp.path().join("db")).expect("db"), config);
    let cases = std::env::var("PROVDB_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (any::<u64>(), proptest::collection::vec(mutation(), 0..4));
    runner
        .run(&strategy, |(seed, mutations)| {
            let bytes = apply(
                encode(&conversation(seed, &format!("fuzz-{seed}"))),
                &mutations,
            );
            send(port, &bytes);
            prop_assert_eq!(panics.load(Ordering::SeqCst), 0);
            Ok(())
        })
        .expect("no input panics the listener");
    // A well-behaved publisher is still served, and what it sends is stored.
    let url = BrokerUrl::parse(&format!("mqtt://127.0.0.1:{port}")).expect("url");
    let SimulatedFleet {
        messages,
        reference,
    } = SimulatedFleet::new(
        &tmp.path().join("reference"),
        &provdb::simulate::SimulationOptions {
            seed: 9,
            machines: 1,
            documents_per_machine: 3,
            records_per_document: 10,
        },
    );
    publish(&url, &messages, 1);
    let (db, _) = service.stop();
    assert_eq!(panics.load(Ordering::SeqCst), 0);
    let stats = db.stats().expect("stats");
    let expected = reference.stats().expect("stats");
    // The fuzz cases' publishes carry empty documents: the graph is the publisher's.
    assert_eq!(
        (stats.vertices, stats.edges),
        (expected.vertices, expected.edges)
    );
}
