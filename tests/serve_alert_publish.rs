//! `provdb serve` with its embedded listener publishes each new alert to the listener's
//! subscribers: a subscriber of `camflow/alerts/#` gets, for each attack scenario published
//! to provdb, the JSON of its alert on `camflow/alerts/<machine>` at QoS 1, the same alert as
//! `provdb alerts --format json` shows, and the final line reports the alert latency.

mod common;
mod mqtt_support;

use mqtt_support::*;
use provdb::ingest::BrokerUrl;
use provdb::simulate::scenarios::Scenario;
use rumqttc::{QoS, SubscribeReasonCode};

#[test]
fn subscribers_of_the_embedded_listener_get_each_scenario_alert() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (messages, truths) = scenario_messages(&[Scenario::DownloadExec, Scenario::Exfiltration]);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let db_path = tmp.path().join("served");
    let serve = ServeProcess::start(&db_path, &["--listen", &listen], &[]);
    // Provenance topics are not published to subscribers: that filter is refused.
    let soc = Subscriber::connect(
        port,
        "soc",
        &["camflow/alerts/#", "camflow/provenance/+"],
        QoS::ExactlyOnce,
        None,
    );
    assert_eq!(
        soc.granted,
        [
            SubscribeReasonCode::Success(QoS::AtLeastOnce),
            SubscribeReasonCode::Failure
        ]
    );
    let url = BrokerUrl::parse(&format!("mqtt://{listen}")).expect("url");
    let last = publish_scenarios_and_check(
        &url,
        &messages,
        &truths,
        serve,
        soc,
        &db_path,
        "camflow/alerts/",
    );
    eprintln!("{last}");
}
