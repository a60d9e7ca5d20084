//! The decoders borrow every attribute name CamFlow writes from their table of names instead
//! of copying it (the copies were a tenth of an import's CPU): every name of the real samples
//! of three CamFlow versions and of the simulator's fleets comes out borrowed, with its text
//! as the JSON spells it; a name CamFlow does not write is copied.

mod common;

use std::borrow::Cow;

use provdb::decode::decode_text;
use provdb::simulate::{Simulation, SimulationOptions};
use provdb::RecordBatch;

/// Every attribute name of a batch, each with whether it was borrowed.
fn names(batch: &RecordBatch) -> Vec<(&str, bool)> {
    let vertices = batch.vertices.iter().flat_map(|v| &v.attrs);
    let edges = batch.edges.iter().flat_map(|e| &e.attrs);
    vertices
        .chain(edges)
        .map(|(name, _)| (name.as_ref(), matches!(name, Cow::Borrowed(_))))
        .collect()
}

fn assert_all_borrowed(batch: &RecordBatch, source: &str) {
    let names = names(batch);
    assert!(names.len() > 20, "{source}: {} names", names.len());
    let copied: Vec<&str> = names
        .iter()
        .filter(|(_, borrowed)| !borrowed)
        .map(|(name, _)| *name)
        .collect();
    assert!(copied.is_empty(), "{source}: copied {copied:?}");
}

#[test]
fn the_real_samples_attribute_names_are_borrowed() {
    let Some(dir) = common::shared_data_dir() else {
        return;
    };
    for (name, ..) in common::SAMPLES {
        let text = std::fs::read(dir.join(name)).unwrap();
        // The badlog's lines that are not JSON are skipped line by line by an import; here
        // each document is decoded alone.
        let mut batch = RecordBatch::default();
        if name.contains("spade") {
            batch = decode_text(text).unwrap();
        } else {
            for line in text.split(|&b| b == b'\n') {
                if line.first() == Some(&b'{') {
                    batch.append(decode_text(line.to_vec()).unwrap());
                }
            }
        }
        assert_all_borrowed(&batch, name);
    }
}

#[test]
fn the_simulators_attribute_names_are_borrowed() {
    let mut batch = RecordBatch::default();
    for d in Simulation::new(&SimulationOptions {
        seed: 5,
        machines: 3,
        documents_per_machine: 50,
        ..Default::default()
    }) {
        batch.append(decode_text(d.json.into_bytes()).unwrap());
    }
    assert_all_borrowed(&batch, "simulation");
}

#[test]
fn a_name_camflow_does_not_write_is_copied_as_sent() {
    let doc = r#"{"prefix":{},"activity":{"cf:AQAAAAAAAEAtowEAAAAAAAEAAAAykjc2AAAAAAAAAAA=":{"prov:type":"task","cf:pid":7,"cf:made_up":"x","":1}}}"#;
    let batch = decode_text(doc.as_bytes().to_vec()).unwrap();
    assert_eq!(
        names(&batch),
        [("cf:pid", true), ("cf:made_up", false), ("", false)]
    );
}
