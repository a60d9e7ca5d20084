//! `provdb serve --broker` publishes each new alert on the broker it ingests from, under a
//! configured topic prefix, at QoS 1: a subscriber at mosquitto gets each attack scenario's
//! alert on `<prefix><machine>`, the same alert as `provdb alerts --format json` shows.

mod common;
mod mqtt_support;

use mqtt_support::*;
use provdb::simulate::scenarios::Scenario;
use rumqttc::{QoS, SubscribeReasonCode};

#[test]
fn alerts_are_published_on_the_external_broker() {
    let Some(broker) = Mosquitto::start(false) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let (messages, truths) = scenario_messages(&[Scenario::DownloadExec, Scenario::Exfiltration]);
    let db_path = tmp.path().join("served");
    let url = broker.url().to_string();
    let serve = ServeProcess::start(
        &db_path,
        &[
            "--broker",
            &url,
            "--client-id",
            "alerts-service",
            "--alert-topic-prefix",
            "soc/provdb/",
        ],
        &[],
    );
    let soc = Subscriber::connect(
        broker.port,
        "soc",
        &["soc/provdb/+"],
        QoS::AtLeastOnce,
        None,
    );
    assert_eq!(
        soc.granted,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let last = publish_scenarios_and_check(
        &broker.url(),
        &messages,
        &truths,
        serve,
        soc,
        &db_path,
        "soc/provdb/",
    );
    eprintln!("{last}");
}
