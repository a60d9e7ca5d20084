//! kill -9 loops: `provdb serve` is killed again and again in mid-stream while a QoS 1
//! publisher that keeps its session (as camflowd does) sends a simulated fleet; after the
//! last restart the archive equals the offline import of the same documents, vertex for
//! vertex and edge for edge. With the embedded listener this holds only because a publish is
//! acknowledged after it is durable: an acknowledged message is never resent.
//!
//! The publisher is written here against the MQTT 3.1.1 text, not taken from a client
//! library: a library's own reconnection logic would be under test too (rumqttc 0.25's event
//! loop was seen to drop queued publishes across a kill, while provdb had told it, correctly,
//! that its session was present).
//!
//! A few cycles run in the suite; the long run is
//! `PROVDB_KILL9_CYCLES=60 cargo test --release --test serve_kill9_loop -- --nocapture`.

mod common;
mod mqtt_support;

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mqtt_support::*;
use provdb::ingest::BrokerUrl;
use provdb::publish::Message;
use provdb::simulate::SimulationOptions;
use provdb::Database;
use rumqttc::{Connect, Packet, Publish, QoS};

/// How a [`ResendingPublisher`] run ended.
#[derive(Debug)]
struct Published {
    acknowledged: usize,
    reconnections: u32,
}

/// A QoS 1 publisher that keeps its session as camflowd does: it numbers its publishes,
/// keeps every unacknowledged one, and after each reconnection resends them all (DUP) before
/// anything new. It paces new publishes at `rate` per second, with at most `window` in
/// flight.
struct ResendingPublisher {
    host: String,
    port: u16,
    client_id: String,
    rate: f64,
    window: usize,
    timeout: Duration,
}

impl ResendingPublisher {
    fn write(stream: &mut TcpStream, packet: Packet) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        packet
            .write(&mut out, 64 << 20)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        stream.write_all(&out)
    }

    /// The next packet, or `Ok(None)` when none arrives within the read timeout.
    fn read(stream: &mut TcpStream, buf: &mut BytesMut) -> std::io::Result<Option<Packet>> {
        loop {
            match Packet::read(buf, 1 << 20) {
                Ok(p) => return Ok(Some(p)),
                Err(rumqttc::Error::InsufficientBytes(_)) => {}
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Connects (retrying while refused) and returns the stream, or `None` at the deadline.
    fn connect(&self, deadline: Instant) -> Option<(TcpStream, BytesMut)> {
        while Instant::now() < deadline {
            let attempt = (|| -> std::io::Result<(TcpStream, BytesMut)> {
                let mut stream = TcpStream::connect((self.host.as_str(), self.port))?;
                stream.set_read_timeout(Some(Duration::from_millis(20)))?;
                let mut connect = Connect::new(self.client_id.clone());
                connect.clean_session = false;
                connect.keep_alive = 60;
                Self::write(&mut stream, Packet::Connect(connect))?;
                let mut buf = BytesMut::new();
                let until = Instant::now() + Duration::from_secs(10);
                while Instant::now() < until {
                    match Self::read(&mut stream, &mut buf)? {
                        Some(Packet::ConnAck(ack))
                            if ack.code == rumqttc::ConnectReturnCode::Success =>
                        {
                            return Ok((stream, buf))
                        }
                        Some(other) => {
                            return Err(std::io::Error::other(format!("refused: {other:?}")))
                        }
                        None => {}
                    }
                }
                Err(std::io::ErrorKind::TimedOut.into())
            })();
            match attempt {
                Ok(connected) => return Some(connected),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        None
    }

    fn run(&self, messages: &[Message]) -> Result<Published, String> {
        let deadline = Instant::now() + self.timeout;
        let start = Instant::now();
        // (packet id, message index) in send order.
        let mut unacked: VecDeque<(u16, usize)> = VecDeque::new();
        let mut acknowledged = 0usize;
        let mut next = 0usize;
        let mut pkid = 0u16;
        let mut reconnections = 0u32;
        let publish_of = |index: usize, pkid: u16, dup: bool| {
            let m = &messages[index];
            let mut p = Publish::new(m.topic.clone(), QoS::AtLeastOnce, m.payload.clone());
            p.pkid = pkid;
            p.dup = dup;
            p.retain = m.retain;
            Packet::Publish(p)
        };
        'connection: while acknowledged < messages.len() {
            let Some((mut stream, mut buf)) = self.connect(deadline) else {
                break;
            };
            if next > 0 {
                reconnections += 1;
            }
            for &(id, index) in &unacked {
                if Self::write(&mut stream, publish_of(index, id, true)).is_err() {
                    continue 'connection;
                }
            }
            while acknowledged < messages.len() {
                if Instant::now() > deadline {
                    break 'connection;
                }
                let due = start + Duration::from_secs_f64(next as f64 / self.rate);
                if next < messages.len() && unacked.len() < self.window && Instant::now() >= due {
                    pkid = pkid % u16::MAX + 1;
                    if Self::write(&mut stream, publish_of(next, pkid, false)).is_err() {
                        unacked.push_back((pkid, next));
                        next += 1;
                        continue 'connection;
                    }
                    unacked.push_back((pkid, next));
                    next += 1;
                    continue;
                }
                match Self::read(&mut stream, &mut buf) {
                    Ok(Some(Packet::PubAck(ack))) => {
                        if let Some(i) = unacked.iter().position(|(id, _)| *id == ack.pkid) {
                            unacked.remove(i);
                            acknowledged += 1;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => continue 'connection,
                }
            }
        }
        if acknowledged == messages.len() {
            Ok(Published {
                acknowledged,
                reconnections,
            })
        } else {
            Err(format!(
                "{acknowledged} of {} messages acknowledged within {:?}",
                messages.len(),
                self.timeout
            ))
        }
    }
}

fn cycles() -> u32 {
    std::env::var("PROVDB_KILL9_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

/// Runs the loop: `serve_args` start the service, `publish_to` is where the publisher sends.
/// `acked_means_stored`: the publisher's acknowledgements come from provdb itself (embedded
/// listener), not from a broker in between.
fn kill_loop(name: &str, serve_args: &[&str], publish_to: BrokerUrl, acked_means_stored: bool) {
    let cycles = cycles();
    let tmp = tempfile::tempdir().expect("tempdir");
    let db_path = tmp.path().join("served");
    let SimulatedFleet {
        messages,
        reference,
    } = SimulatedFleet::new(
        &tmp.path().join("reference"),
        &SimulationOptions {
            seed: 21,
            machines: 4,
            documents_per_machine: (u64::from(cycles) * 50).max(150),
            records_per_document: 40,
        },
    );
    let expected_edges = reference.stats().expect("stats").edges;

    let mut serve = ServeProcess::start(&db_path, serve_args, &[("RUST_LOG", "provdb=debug")]);
    let total = messages.len();
    let publisher = {
        let publisher = ResendingPublisher {
            host: publish_to.host.clone(),
            port: publish_to.port,
            client_id: "kill9-loop-publisher".to_owned(),
            // About 2.5 s of traffic per kill cycle.
            rate: 80.0,
            window: 100,
            timeout: Duration::from_secs(300),
        };
        std::thread::spawn(move || publisher.run(&messages))
    };
    let started = Instant::now();
    let mut at_kill = Vec::new();
    for cycle in 0..cycles {
        // Kill at a point that moves within each cycle, so kills land in every stage.
        let wait = 700 + u64::from(cycle * 397 % 1300);
        std::thread::sleep(Duration::from_millis(wait));
        assert!(
            !publisher.is_finished(),
            "the publisher finished before kill {cycle}: make the stream longer"
        );
        serve.kill9();
        at_kill.push(edges_stored(&db_path));
        serve = ServeProcess::start(&db_path, serve_args, &[("RUST_LOG", "provdb=debug")]);
    }
    let published = match publisher.join().expect("publisher thread") {
        Ok(published) => published,
        Err(e) => panic!(
            "not every message was acknowledged: {e}\nedges stored: {} of {expected_edges}; \
             edges at each kill: {at_kill:?}\nlog of the running service:\n{}",
            edges_stored(&db_path),
            serve.log()
        ),
    };
    assert_eq!(published.acknowledged, total);
    // With the embedded listener every acknowledged message is durable: the archive must hold
    // them all now (nothing is resent after its acknowledgement). Behind a broker, provdb
    // catches up on what the broker holds.
    let stored_when_acked = edges_stored(&db_path);
    if !acked_means_stored {
        let deadline = Instant::now() + Duration::from_secs(90);
        while edges_stored(&db_path) < expected_edges {
            assert!(
                Instant::now() < deadline,
                "the service did not catch up in 90 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let (status, log) = serve.stop();
    assert!(status.success(), "graceful stop failed: {status:?}\n{log}");
    eprintln!(
        "{name}: {cycles} kills in {:.1} s, {total} messages ({expected_edges} edges), the publisher \
         reconnected {} times; edges stored at each kill: {at_kill:?}",
        started.elapsed().as_secs_f64(),
        published.reconnections
    );
    assert!(
        at_kill.first().is_some_and(|e| *e < expected_edges),
        "the first kill came too late to test anything"
    );
    if acked_means_stored {
        assert_eq!(
            stored_when_acked, expected_edges,
            "edges durable when the publisher had every acknowledgement"
        );
    }
    let db = Database::open(&db_path).expect("reopen");
    assert_same_graph(&db, &reference);
}

#[test]
fn embedded_listener_kill_9_loop_loses_nothing_acknowledged() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = BrokerUrl::parse(&format!("mqtt://{listen}")).expect("url");
    kill_loop("embedded", &["--listen", &listen], url, true);
}

#[test]
fn mosquitto_kill_9_loop_loses_nothing_acknowledged() {
    let Some(broker) = Mosquitto::start(true) else {
        return;
    };
    let url = broker.url().to_string();
    kill_loop(
        "mosquitto",
        &["--broker", &url, "--client-id", "kill9-loop-service"],
        broker.url(),
        false,
    );
}
