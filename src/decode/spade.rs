//! SPADE JSON records (camflowd `format=spade_json`): JSON lines since libprovenance v0.4.4, a
//! JSON array before. `from` is the receiver and `to` the sender (SPADE's effect -> cause), so
//! edges are stored `to -> from`.

use provdb_storage::{
    EdgeInput, EndpointInput, ExternalId, ProvClass, ProvRelation, RecordBatch, VertexInput,
};
use simd_json::prelude::*;
use simd_json::BorrowedValue;

use super::date::parse_camflow_date;
use super::{
    as_u32_lenient, attribute_name, edge_placement, parse_json, short, to_value, vertex_placement,
    DecodeError,
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
    let value = parse_json(bytes, None)?;
    let items = value
        .as_array()
        .ok_or_else(|| DecodeError::structure("SPADE array", "expected a JSON array"))?;
    let mut batch = RecordBatch::default();
    for (i, item) in items.iter().enumerate() {
        decode_record(item, i + 1, &mut batch).map_err(|e| match e {
            DecodeError::Structure { detail, .. } => {
                DecodeError::structure(format!("SPADE array item {}", i + 1), detail)
            }
            other => other,
        })?;
    }
    Ok(batch)
}

/// Decodes one SPADE record into `batch`.
pub fn decode_record(
    value: &BorrowedValue<'_>,
    line: usize,
    batch: &mut RecordBatch,
) -> Result<(), DecodeError> {
    let context = || format!("SPADE record on line {line}");
    let obj = value
        .as_object()
        .ok_or_else(|| DecodeError::structure(context(), "expected a JSON object"))?;
    let kind = obj
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or_else(|| DecodeError::structure(context(), "missing string `type`"))?;
    let empty = simd_json::borrowed::Object::default();
    let annotations = match obj.get("annotations") {
        Some(a) => a
            .as_object()
            .ok_or_else(|| DecodeError::structure(context(), "`annotations` is not an object"))?,
        None => &empty,
    };
    let time = annotations
        .get("cf:date")
        .or_else(|| annotations.get("date"))
        .and_then(|d| d.as_str())
        .and_then(parse_camflow_date);
    let str_field = |key: &'static str| -> Result<&str, DecodeError> {
        obj.get(key)
            .and_then(|v| v.as_str())
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
        let type_name = match annotations.get("object_type").and_then(|t| t.as_str()) {
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
            placement.machine = annotations
                .get("cf:machine_id")
                .and_then(as_u32_lenient)
                .or_else(|| id.parse().ok());
        }
        let attrs = annotations
            .iter()
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
    let id = annotations
        .get("id")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| DecodeError::structure(context(), "missing relation id `annotations.id`"))?;
    let ext_id = ExternalId::parse(id);
    let type_name = annotations
        .get("relation_type")
        .and_then(|t| t.as_str())
        .unwrap_or(kind)
        .to_owned();
    let hint = |key: &str| {
        annotations
            .get(key)
            .and_then(|t| t.as_str())
            .map(str::to_owned)
    };
    let attrs = annotations
        .iter()
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
