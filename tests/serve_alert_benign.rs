//! Benign activity publishes no alert message: a subscriber of every alert topic of the
//! embedded listener receives nothing while a simulated fleet's documents are stored.

mod common;
mod mqtt_support;

use std::time::Duration;

use mqtt_support::*;
use provdb::ingest::{BrokerUrl, IngestConfig};
use provdb::simulate::SimulationOptions;
use provdb::Database;
use rumqttc::{QoS, SubscribeReasonCode};

#[test]
fn a_benign_fleet_publishes_no_alert() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fleet = SimulatedFleet::new(
        &tmp.path().join("reference"),
        &SimulationOptions {
            seed: 9,
            machines: 3,
            documents_per_machine: 30,
            records_per_document: 40,
        },
    );
    let port = free_port();
    let config = test_config(
        IngestConfig::embedded(format!("127.0.0.1:{port}").parse().expect("addr")),
        "benign",
    );
    let service = Service::start(
        Database::open(tmp.path().join("served")).expect("db"),
        config,
    );
    let soc = Subscriber::connect(port, "soc", &["#"], QoS::AtLeastOnce, None);
    assert_eq!(
        soc.granted,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let url = BrokerUrl::parse(&format!("mqtt://127.0.0.1:{port}")).expect("url");
    let n = publish(&url, &fleet.messages, 1);
    service.wait_handled(n, Duration::from_secs(60));
    // Alerts go out right after the write that raised them: give them time all the same.
    std::thread::sleep(Duration::from_millis(500));
    let (db, stats) = service.stop();
    let received = soc.stop();
    assert!(received.is_empty(), "alert messages: {received:?}");
    assert_eq!(
        (
            stats.alerts_new,
            stats.alerts_published,
            stats.alerts_dropped
        ),
        (0, 0, 0),
        "{stats:?}"
    );
    assert!(db
        .alerts(&provdb::detect::AlertFilter::default())
        .expect("alerts")
        .is_empty());
    assert_same_graph(&db, &fleet.reference);
}
