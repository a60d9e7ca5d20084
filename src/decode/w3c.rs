//! W3C PROV-JSON documents as libprovenance writes them (one document per MQTT message or
//! per log line).

use provdb_storage::{
    EdgeInput, EndpointInput, ExternalId, ProvClass, ProvRelation, RecordBatch, VertexInput,
};
use simd_json::prelude::*;

use super::date::parse_camflow_date;
use super::{
    as_u32_lenient, attribute_name, bare_id, edge_placement, expect_object, short, to_value,
    vertex_placement, DecodeError, JsonObject,
};

/// Sender and receiver keys of each relation section (libprovenance `provenanceW3CJSON.c`).
pub fn relation_section(name: &str) -> Option<(ProvRelation, &'static str, &'static str)> {
    Some(match name {
        "used" => (ProvRelation::Used, "prov:entity", "prov:activity"),
        "wasGeneratedBy" => (ProvRelation::WasGeneratedBy, "prov:activity", "prov:entity"),
        "wasInformedBy" => (
            ProvRelation::WasInformedBy,
            "prov:informant",
            "prov:informed",
        ),
        "wasInfluencedBy" => (
            ProvRelation::WasInfluencedBy,
            "prov:influencer",
            "prov:influencee",
        ),
        "wasAssociatedWith" => (
            ProvRelation::WasAssociatedWith,
            "prov:agent",
            "prov:activity",
        ),
        "wasDerivedFrom" => (
            ProvRelation::WasDerivedFrom,
            "prov:usedEntity",
            "prov:generatedEntity",
        ),
        "relation" => (ProvRelation::Relation, "cf:sender", "cf:receiver"),
        _ => return None,
    })
}

fn vertex_section(name: &str) -> Option<ProvClass> {
    Some(match name {
        "activity" => ProvClass::Activity,
        "entity" | "message" => ProvClass::Entity,
        "agent" => ProvClass::Agent,
        _ => return None,
    })
}

/// Decodes one parsed W3C document into records. A malformed element rejects the document,
/// with the section and element named in the error.
pub fn decode_document(obj: &JsonObject<'_, '_>) -> Result<RecordBatch, DecodeError> {
    let mut batch = RecordBatch::default();
    for (section, elements) in obj.iter() {
        if section == "prefix" {
            continue;
        }
        let class = vertex_section(section);
        let relation = relation_section(section);
        if class.is_none() && relation.is_none() {
            return Err(DecodeError::structure(
                format!("section `{section}`"),
                "unknown PROV-JSON section",
            ));
        }
        let elements = expect_object(
            elements,
            || format!("section `{section}`"),
            "expected an object of elements",
        )?;
        for (key, element) in elements.iter() {
            let context = || format!("section `{section}`, element `{}`", short(key));
            let attrs = expect_object(element, context, "element is not an object")?;
            if let Some(class) = class {
                batch.vertices.push(vertex(key, class, &attrs, &context)?);
            } else if let Some((relation, snd, rcv)) = relation {
                batch
                    .edges
                    .push(edge(key, section, relation, snd, rcv, &attrs, &context)?);
            }
        }
    }
    Ok(batch)
}

fn time_of(attrs: &JsonObject<'_, '_>) -> Option<i64> {
    attrs
        .get("cf:date")
        .and_then(|d| d.into_string())
        .and_then(parse_camflow_date)
}

fn vertex(
    key: &str,
    class: ProvClass,
    attrs: &JsonObject<'_, '_>,
    context: &dyn Fn() -> String,
) -> Result<VertexInput, DecodeError> {
    let ext_id = ExternalId::parse(key);
    let type_name = match attrs.get("prov:type") {
        // libprovenance v0.1.7-v0.1.8 wrote `"prov:type":"cf:file"` on inodes.
        Some(t) => bare_id(
            t.as_str()
                .ok_or_else(|| DecodeError::structure(context(), "`prov:type` is not a string"))?,
        )
        .into_owned(),
        // Versions up to v0.1.8 (all vertices but inodes) and the camflowd <= v0.2.2 machine
        // description have no prov:type: the label starts with the type, as in `[task] 0`,
        // `[path] /etc/hosts` or `[machine] 184983327`.
        None => attrs
            .get("prov:label")
            .and_then(|l| l.into_string())
            .and_then(type_of_label)
            .ok_or_else(|| {
                DecodeError::structure(
                    context(),
                    "missing `prov:type` (and no `[type] ...` `prov:label`)",
                )
            })?
            .to_owned(),
    };
    let mut placement = vertex_placement(&ext_id, type_name == "packet", time_of(attrs));
    if placement.machine.is_none() && type_name == "machine" {
        placement.machine = attrs
            .get("cf:machine_id")
            .and_then(as_u32_lenient)
            .or_else(|| bare_id(key).parse().ok());
    }
    let attrs = attrs
        .iter()
        .filter(|(k, _)| *k != "prov:type")
        .map(|(k, v)| (attribute_name(k), to_value(v)))
        .collect();
    Ok(VertexInput {
        ext_id,
        type_name,
        class,
        placement,
        attrs,
    })
}

/// The type name at the start of a label: `task` in `[task] 0`.
fn type_of_label(label: &str) -> Option<&str> {
    let (name, _) = label.strip_prefix('[')?.split_once(']')?;
    (!name.is_empty() && !name.contains(char::is_whitespace)).then_some(name)
}

fn endpoint(
    attrs: &JsonObject<'_, '_>,
    key: &'static str,
    context: &dyn Fn() -> String,
) -> Result<EndpointInput, DecodeError> {
    let value = attrs
        .get(key)
        .ok_or_else(|| DecodeError::structure(context(), format!("missing endpoint `{key}`")))?;
    let id = value
        .as_str()
        .filter(|s| !bare_id(s).is_empty())
        .ok_or_else(|| {
            DecodeError::structure(context(), format!("endpoint `{key}` is not an id string"))
        })?;
    Ok(EndpointInput {
        ext_id: ExternalId::parse(id),
        type_hint: None,
    })
}

fn edge(
    key: &str,
    section: &str,
    relation: ProvRelation,
    snd: &'static str,
    rcv: &'static str,
    attrs: &JsonObject<'_, '_>,
    context: &dyn Fn() -> String,
) -> Result<EdgeInput, DecodeError> {
    let ext_id = ExternalId::parse(key);
    let type_name = match attrs.get("prov:type") {
        Some(t) => t
            .as_str()
            .ok_or_else(|| DecodeError::structure(context(), "`prov:type` is not a string"))?
            .to_owned(),
        // Up to v0.1.8 the relation type was the string `cf:type` (later a number or hex).
        None => match attrs.get("cf:type").and_then(|t| t.into_string()) {
            Some(t) if !t.is_empty() => t.to_owned(),
            _ => section.to_owned(),
        },
    };
    let src = endpoint(attrs, snd, context)?;
    let dst = endpoint(attrs, rcv, context)?;
    let placement = edge_placement(&ext_id, time_of(attrs));
    let attrs = attrs
        .iter()
        .filter(|(k, _)| *k != "prov:type" && *k != snd && *k != rcv)
        .map(|(k, v)| (attribute_name(k), to_value(v)))
        .collect();
    Ok(EdgeInput {
        ext_id,
        type_name,
        relation,
        src,
        dst,
        placement,
        attrs,
    })
}
