//! Subscriptions at the embedded listener: granted QoS, a filter naming one machine, two
//! subscribers at once, UNSUBSCRIBE, the password file applying to subscribers, publishing
//! off (every SUBSCRIBE refused), and a subscriber that never reads not holding ingest up.

mod common;
mod mqtt_support;

use std::io::Write as _;
use std::time::Duration;

use mqtt_support::*;
use provdb::ingest::{BrokerUrl, IngestConfig, ListenerSecurity};
use provdb::simulate::scenarios::Scenario;
use provdb::Database;
use rumqttc::{QoS, SubscribeReasonCode};

fn service(dir: &std::path::Path, port: u16, configure: impl FnOnce(&mut IngestConfig)) -> Service {
    let mut config = test_config(
        IngestConfig::embedded(format!("127.0.0.1:{port}").parse().expect("addr")),
        "alerts",
    );
    configure(&mut config);
    Service::start(Database::open(dir.join("served")).expect("db"), config)
}

fn url(port: u16) -> BrokerUrl {
    BrokerUrl::parse(&format!("mqtt://127.0.0.1:{port}")).expect("url")
}

#[test]
fn qos_machine_filters_several_subscribers_and_unsubscribe() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (messages, truths) = scenario_messages(&[Scenario::DownloadExec, Scenario::Exfiltration]);
    let (first, second) = (&truths[0], &truths[1]);
    let port = free_port();
    let service = service(tmp.path(), port, |_| {});
    let all = Subscriber::connect(port, "all", &["camflow/alerts/+"], QoS::AtMostOnce, None);
    assert_eq!(all.granted, [SubscribeReasonCode::Success(QoS::AtMostOnce)]);
    let one_filter = format!("camflow/alerts/{}", first.machine);
    let one = Subscriber::connect(port, "one", &[&one_filter], QoS::ExactlyOnce, None);
    assert_eq!(
        one.granted,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let leaver = Subscriber::connect(port, "leaver", &["camflow/#"], QoS::AtLeastOnce, None);
    leaver.unsubscribe("camflow/#");
    publish(&url(port), &messages, 1);
    service.wait_until("alerts of both scenarios", Duration::from_secs(30), |s| {
        s.alerts_new >= 2
    });
    let expected = service.stats().alerts_new as usize;
    let got_all = all.wait_for(expected, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    let (_, stats) = service.stop();
    let got_one = one.stop();
    let got_leaver = leaver.stop();
    assert_eq!(all.stop().len(), expected);
    assert!(
        got_all.iter().all(|p| p.qos == QoS::AtMostOnce),
        "{got_all:?}"
    );
    assert!(!got_one.is_empty());
    for p in &got_one {
        assert_eq!(p.qos, QoS::AtLeastOnce);
        assert_eq!(p.topic, one_filter);
        assert_eq!(alert_json(p)["rule"], first.scenario.name());
    }
    assert!(got_all
        .iter()
        .any(|p| alert_json(p)["rule"] == second.scenario.name()));
    assert!(
        got_leaver.is_empty(),
        "unsubscribed, yet got {got_leaver:?}"
    );
    assert_eq!(
        stats.alerts_published,
        (got_all.len() + got_one.len()) as u64,
        "{stats:?}"
    );
    assert!(stats.alert_latency_median.is_some() && stats.alert_latency_p99.is_some());
    assert_eq!(stats.alerts_dropped, 0);
}

#[test]
fn subscribers_need_the_password_too() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A plain `user:password` line (the listener also takes mosquitto_passwd's hashes).
    let file = tmp.path().join("passwords");
    std::fs::write(&file, "soc:s3cret\n").expect("write the password file");
    let port = free_port();
    let service = service(tmp.path(), port, |c| {
        c.listener = ListenerSecurity {
            password_file: Some(file.clone()),
            ..ListenerSecurity::default()
        };
    });
    let refused =
        Subscriber::try_connect(port, "anon", &["camflow/alerts/#"], QoS::AtLeastOnce, None);
    assert!(
        refused.is_err(),
        "a subscriber without credentials was admitted"
    );
    let wrong = Subscriber::try_connect(
        port,
        "wrong",
        &["camflow/alerts/#"],
        QoS::AtLeastOnce,
        Some(("soc", "nope")),
    );
    assert!(wrong.is_err(), "a wrong password was admitted");
    let soc = Subscriber::connect(
        port,
        "soc",
        &["camflow/alerts/#"],
        QoS::AtLeastOnce,
        Some(("soc", "s3cret")),
    );
    assert_eq!(
        soc.granted,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    drop(refused);
    drop(wrong);
    soc.stop();
    service.stop();
}

#[test]
fn with_publishing_off_every_subscription_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let service = service(tmp.path(), port, |c| c.alert_topic_prefix = String::new());
    let soc = Subscriber::connect(
        port,
        "soc",
        &["camflow/alerts/#", "#"],
        QoS::AtLeastOnce,
        None,
    );
    assert_eq!(
        soc.granted,
        [SubscribeReasonCode::Failure, SubscribeReasonCode::Failure]
    );
    soc.stop();
    service.stop();
}

#[test]
fn a_subscriber_that_never_reads_does_not_hold_ingest_up() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (messages, _) = scenario_messages(&[Scenario::DownloadExec, Scenario::Exfiltration]);
    let port = free_port();
    let service = service(tmp.path(), port, |_| {});
    // A raw client: CONNECT and SUBSCRIBE, then it never reads a byte (nor acknowledges).
    let mut stuck = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut out = bytes::BytesMut::new();
    let mut connect = rumqttc::Connect::new("stuck");
    connect.keep_alive = 0;
    rumqttc::Packet::Connect(connect)
        .write(&mut out, 1 << 20)
        .expect("encode CONNECT");
    let mut subscribe = rumqttc::Subscribe::new("camflow/alerts/#", QoS::AtLeastOnce);
    subscribe.pkid = 1;
    rumqttc::Packet::Subscribe(subscribe)
        .write(&mut out, 1 << 20)
        .expect("encode SUBSCRIBE");
    stuck.write_all(&out).expect("send");
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        publish(&url(port), &messages, 1);
    }
    service.wait_handled(3 * messages.len() as u64, Duration::from_secs(60));
    service.wait_until("alerts", Duration::from_secs(10), |s| s.alerts_new >= 2);
    let started = std::time::Instant::now();
    let (_, stats) = service.stop();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(stats.alerts_published >= 2, "{stats:?}");
    drop(stuck);
}
