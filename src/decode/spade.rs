//! SPADE JSON records (camflowd `format=spade_json`): JSON lines since libprovenance v0.4.4, a
//! JSON array before. `from` is the receiver and `to` the sender (SPADE's effect -> cause), so
//! edges are stored `to -> from`.

use provdb_storage::{
    EdgeInput, EndpointInput, ExternalId, ProvClass, ProvRelation, RecordBatch, VertexInput,
};
use simd_json::prelude::*;

use super::date::parse_camflow_date;
use super::{
    as_u32_lenient, attribute_name, edge_placement, expect_object, parse_json, short, to_value,
    vertex_placement, DecodeError, JsonObject,
};

fn relation_of(kind: &str) -> Option<ProvRelation> {
    Some(match kind {
        "Used" => ProvRelation::Used,
        "WasGeneratedBy" => ProvRelation::WasGeneratedBy,
        "WasInformedBy" => ProvRelation::WasInformedBy,
        "WasInfluencedBy" => ProvRelation::WasInfluencedBy,
        "WasAssociatedWith" => ProvRelation::WasAssociatedWith,
        "WasDerivedFrom" => ProvRelation::WasDerivedFrom,
        _ => return None,
    })
}

/// Decodes the legacy SPADE array `[{...},{...}]` (libprovenance v0.4.0 - v0.4.3).
pub fn decode_array(bytes: &mut [u8]) -> Result<RecordBatch, DecodeError> {
    let tape = parse_json(bytes, None)?;
    let items = tape
        .as_value()
        .as_array()
        .ok_or_else(|| DecodeError::structure("SPADE array", "expected a JSON array"))?;
    let mut batch = RecordBatch::default();
    for (i, item) in items.iter().enumerate() {
        let record = expect_object(
            item,
            || format!("SPADE array item {}", i + 1),
            "expected a JSON object",
        )?;
        decode_record(&record, i + 1, &mut batch).map_err(|e| match e {
            DecodeError::Structure { detail, .. } => {
                DecodeError::structure(format!("SPADE array item {}", i + 1), detail)
            }
            other => other,
        })?;
    }
    Ok(batch)
}

/// Decodes one SPADE record (a JSON object) into `batch`.
pub fn decode_record(
    obj: &JsonObject<'_, '_>,
    line: usize,
    batch: &mut RecordBatch,
) -> Result<(), DecodeError> {
    let context = || format!("SPADE record on line {line}");
    let kind = obj
        .get("type")
        .and_then(|t| t.into_string())
        .ok_or_else(|| DecodeError::structure(context(), "missing string `type`"))?;
    let annotations = match obj.get("annotations") {
        Some(a) => Some(expect_object(a, context, "`annotations` is not an object")?),
        None => None,
    };
    let annotation = |key: &str| annotations.as_ref().and_then(|a| a.get(key));
    let annotation_pairs = || annotations.iter().flat_map(|a| a.iter());
    let time = annotation("cf:date")
        .or_else(|| annotation("date"))
        .and_then(|d| d.into_string())
        .and_then(parse_camflow_date);
    let str_field = |key: &'static str| -> Result<&str, DecodeError> {
        obj.get(key)
            .and_then(|v| v.into_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| DecodeError::structure(context(), format!("missing string `{key}`")))
    };
    let class = match kind {
        "Entity" => Some(ProvClass::Entity),
        "Activity" => Some(ProvClass::Activity),
        "Agent" => Some(ProvClass::Agent),
        _ => None,
    };
    if let Some(class) = class {
        let id = str_field("id")?;
        let ext_id = ExternalId::parse(id);
        let type_name = match annotation("object_type").and_then(|t| t.into_string()) {
            Some(t) => t.to_owned(),
            // camflowd v0.2.x machine description: an Entity keyed by the decimal machine id.
            None if id.bytes().all(|b| b.is_ascii_digit()) => "machine".to_owned(),
            None => {
                return Err(DecodeError::structure(
                    format!("{} (`{}`)", context(), short(id)),
                    "missing `annotations.object_type`",
                ))
            }
        };
        let mut placement = vertex_placement(&ext_id, type_name == "packet", time);
        if placement.machine.is_none() && type_name == "machine" {
            placement.machine = annotation("cf:machine_id")
                .and_then(as_u32_lenient)
                .or_else(|| id.parse().ok());
        }
        let attrs = annotation_pairs()
            .filter(|(k, _)| *k != "object_type")
            .map(|(k, v)| (attribute_name(k), to_value(v)))
            .collect();
        batch.vertices.push(VertexInput {
            ext_id,
            type_name,
            class,
            placement,
            attrs,
        });
        return Ok(());
    }
    let relation = relation_of(kind).ok_or_else(|| {
        DecodeError::structure(context(), format!("unknown SPADE record type `{kind}`"))
    })?;
    let receiver = str_field("from")?;
    let sender = str_field("to")?;
    let id = annotation("id")
        .and_then(|v| v.into_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| DecodeError::structure(context(), "missing relation id `annotations.id`"))?;
    let ext_id = ExternalId::parse(id);
    let type_name = annotation("relation_type")
        .and_then(|t| t.into_string())
        .unwrap_or(kind)
        .to_owned();
    let hint = |key: &str| {
        annotation(key)
            .and_then(|t| t.into_string())
            .map(str::to_owned)
    };
    let attrs = annotation_pairs()
        .filter(|(k, _)| *k != "id" && *k != "relation_type")
        .map(|(k, v)| (attribute_name(k), to_value(v)))
        .collect();
    batch.edges.push(EdgeInput {
        placement: edge_placement(&ext_id, time),
        ext_id,
        type_name,
        relation,
        src: EndpointInput {
            ext_id: ExternalId::parse(sender),
            type_hint: hint("to_type"),
        },
        dst: EndpointInput {
            ext_id: ExternalId::parse(receiver),
            type_hint: hint("from_type"),
        },
        attrs,
    });
    Ok(())
}
