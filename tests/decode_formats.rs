//! Every document shape a CamFlow payload can take decodes to the same records.

mod common;

use provdb::decode::{decode_text, DecodeError};
use provdb::ProvRelation;

const TASK: &str = "AQAAAAAAAEAtowEAAAAAAAEAAAAykjc2AAAAAAAAAAA=";
const FILE: &str = "AAEAAAAAACBSowEAAAAAAAEAAAAykjc2AAAAAAAAAAA=";
const SPADE_LINES: &str = r#"{"type":"Activity","id":"AQAAAAAAAEAtowEAAAAAAAEAAAAykjc2AAAAAAAAAAA=","annotations": {"object_id":"107309","object_type":"task","boot_id":1,"cf:machine_id":"cf:909611570","version":0,"cf:date":"2023:07:24T15:23:42","pid":2086}}
{"type":"Used","from":"AQAAAAAAAEAtowEAAAAAAAEAAAAykjc2AAAAAAAAAAA=","to":"AAEAAAAAACBSowEAAAAAAAEAAAAykjc2AAAAAAAAAAA=","annotations": {"id":"gAAAAAAAIIABAAAAAAAAAAEAAAAykjc2AAAAAAAAAAA=","relation_id":"1","relation_type":"open","boot_id":1,"cf:machine_id":"cf:909611570","cf:date":"2023:07:24T15:23:42","from_type":"task","to_type":"file"}}
"#;

fn check_spade(batch: &provdb::RecordBatch) {
    assert_eq!(batch.vertices.len(), 1);
    assert_eq!(batch.edges.len(), 1);
    let e = &batch.edges[0];
    // SPADE's `to` is the sender: the file flows into the task.
    assert_eq!(e.src.ext_id.to_string(), FILE);
    assert_eq!(e.dst.ext_id.to_string(), TASK);
    assert_eq!(e.src.type_hint.as_deref(), Some("file"));
    assert_eq!(e.relation, ProvRelation::Used);
    assert_eq!(e.type_name, "open");
    assert_eq!(e.placement.machine, Some(909_611_570));
    assert_eq!(batch.vertices[0].placement.machine, Some(909_611_570));
}

#[test]
fn spade_json_lines_and_the_legacy_array_agree() {
    check_spade(&decode_text(SPADE_LINES.as_bytes().to_vec()).unwrap());
    let array = format!("[\n{}\n]", SPADE_LINES.trim().replace("}}\n{", "}},\n{"));
    check_spade(&decode_text(array.into_bytes()).unwrap());
}

#[test]
fn pretty_printed_and_concatenated_w3c_documents_decode() {
    let doc = format!(
        r#"{{"prefix":{{}},"activity":{{"cf:{TASK}":{{"prov:type":"task"}}}},"entity":{{"cf:{FILE}":{{"prov:type":"file"}}}},"used":{{"cf:gAAAAAAAIIABAAAAAAAAAAEAAAAykjc2AAAAAAAAAAA=":{{"prov:type":"read","prov:entity":"cf:{FILE}","prov:activity":"cf:{TASK}"}}}}}}"#
    );
    let one = decode_text(doc.clone().into_bytes()).unwrap();
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&doc).unwrap())
            .unwrap();
    assert!(pretty.contains('\n'));
    let from_pretty = decode_text(pretty.into_bytes()).unwrap();
    assert_eq!(from_pretty.vertices.len(), 2);
    assert_eq!(from_pretty.edges, one.edges);
    let two = decode_text(format!("{doc}\n{doc}\n").into_bytes()).unwrap();
    assert_eq!(two.len(), 2 * one.len());
}

#[test]
fn a_bad_spade_line_names_its_line() {
    let text = format!("{SPADE_LINES}{{\"type\":\"Used\",\"from\":\"x\"}}\n");
    let err = decode_text(text.into_bytes()).unwrap_err();
    assert!(matches!(err, DecodeError::Structure { .. }));
    assert!(err.to_string().contains("line 3"), "{err}");
    let text = format!("{SPADE_LINES}{{\"type\":\n");
    match decode_text(text.into_bytes()).unwrap_err() {
        DecodeError::Json { line, .. } => assert_eq!(line, Some(3)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_real_spade_sample_decodes_as_one_payload() {
    let Some(path) = common::sample("v0.8.0-spade-android.log") else {
        return;
    };
    let batch = decode_text(std::fs::read(path).unwrap()).unwrap();
    // 28 records in the file (SOURCES.md); one vertex is defined twice.
    assert_eq!(batch.vertices.len() + batch.edges.len(), 28);
}

/// Every JSON kind an attribute can take is stored as that kind, in W3C documents and SPADE
/// records alike: numbers by range, nested arrays and objects as their compact JSON text.
#[test]
fn attribute_values_keep_their_json_kind() {
    use provdb::Value;
    let attrs = r#""a_null":null,"a_bool":true,"a_neg":-5,"a_max_i64":9223372036854775807,"a_big":18446744073709551615,"a_float":1.5,"a_str":"s\"q","a_list":[1, {"a" : 2}],"a_map":{"k":[true,null]}"#;
    let expected: Vec<(&str, Value)> = vec![
        ("a_null", Value::Null),
        ("a_bool", Value::Bool(true)),
        ("a_neg", Value::Int(-5)),
        ("a_max_i64", Value::Int(i64::MAX)),
        ("a_big", Value::UInt(u64::MAX)),
        ("a_float", Value::Float(1.5)),
        ("a_str", Value::Str("s\"q".into())),
        ("a_list", Value::Json(r#"[1,{"a":2}]"#.into())),
        ("a_map", Value::Json(r#"{"k":[true,null]}"#.into())),
    ];
    let w3c = format!(r#"{{"activity":{{"cf:{TASK}":{{"prov:type":"task",{attrs}}}}}}}"#);
    let spade = format!(
        r#"{{"type":"Activity","id":"{TASK}","annotations":{{"object_type":"task",{attrs}}}}}"#
    );
    for text in [w3c, spade] {
        let batch = decode_text(text.clone().into_bytes()).unwrap();
        let [vertex] = batch.vertices.as_slice() else {
            panic!("one vertex from {text}");
        };
        assert_eq!(vertex.type_name, "task");
        let got: Vec<(&str, Value)> = vertex
            .attrs
            .iter()
            .map(|(k, v)| (k.as_ref(), v.clone()))
            .collect();
        assert_eq!(got, expected, "{text}");
    }
}
