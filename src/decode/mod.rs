//! CamFlow decoding: MQTT payload bytes or log-file text -> storage records.
//!
//! * [`payload`]: base64 + zlib envelope with an inflate cap.
//! * [`w3c`]: W3C PROV-JSON documents of every CamFlow version (bare or `cf:` ids, numeric or
//!   `"cf:N"` machine ids, the old `relation` section, legacy machine descriptions).
//! * [`spade`]: SPADE JSON lines and the legacy SPADE JSON array.
//! * [`identifier`]: the kernel's 32-byte identifiers; [`date`]: `cf:date`.
//!
//! Edges come out in information-flow direction (sender -> receiver).

pub mod date;
mod error;
pub mod identifier;
pub mod payload;
pub mod spade;
pub mod w3c;

use std::borrow::Cow;

use provdb_storage::{ExternalId, Placement, RecordBatch, Value};
use simd_json::prelude::*;
use simd_json::BorrowedValue;

pub use error::DecodeError;
pub use payload::DEFAULT_MAX_INFLATED;

use identifier::NodeIdentifier;

/// What a piece of text is, judged from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A JSON object or array: a W3C document or SPADE record(s).
    Json,
    /// Base64 text: an MQTT payload (zlib inside).
    Payload,
    /// Anything else (e.g. the capture service's own log lines).
    Other,
}

/// Classifies one line of a log or payload file.
///
/// ```
/// use provdb::decode::{classify_line, TextKind};
/// assert_eq!(classify_line(r#"{"prefix":{}}"#), TextKind::Json);
/// assert_eq!(classify_line("eJyrVipILUpKzUtPLVKyqlYqTi0uzszPU7JSUKoFAIi4CaA="), TextKind::Payload);
/// assert_eq!(classify_line("Starting audit service..."), TextKind::Other);
/// ```
pub fn classify_line(line: &str) -> TextKind {
    let t = line.trim();
    match t.as_bytes().first() {
        Some(b'{') | Some(b'[') => TextKind::Json,
        Some(_)
            if t.len() >= 8
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')) =>
        {
            TextKind::Payload
        }
        _ => TextKind::Other,
    }
}

/// Decodes an MQTT payload (base64 of zlib of a W3C document or SPADE lines).
///
/// ```
/// use base64::Engine as _;
/// use std::io::Write;
/// let doc = r#"{"prefix":{},"activity":{"cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=":{"prov:type":"task","cf:pid":3666}}}"#;
/// let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
/// z.write_all(doc.as_bytes())?;
/// let payload = base64::engine::general_purpose::STANDARD.encode(z.finish()?);
/// let batch = provdb::decode::decode_payload(payload.as_bytes(), provdb::decode::DEFAULT_MAX_INFLATED)?;
/// assert_eq!(batch.vertices.len(), 1);
/// assert_eq!(batch.vertices[0].placement.machine, Some(1958431827));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode_payload(payload: &[u8], max_inflated: usize) -> Result<RecordBatch, DecodeError> {
    let json = payload::unwrap_payload(payload, max_inflated)?;
    decode_text(json)
}

/// Decodes JSON text (bytes, UTF-8 with lossy fallback): one W3C document, SPADE JSON lines or
/// a SPADE JSON array.
pub fn decode_text(bytes: Vec<u8>) -> Result<RecordBatch, DecodeError> {
    let mut bytes = match String::from_utf8(bytes) {
        Ok(s) => s.into_bytes(),
        Err(e) => String::from_utf8_lossy(e.as_bytes())
            .into_owned()
            .into_bytes(),
    };
    let Some((first, last)) = payload::trimmed_bounds(&bytes) else {
        return Err(DecodeError::Empty);
    };
    if bytes[first] == b'[' {
        return spade::decode_array(&mut bytes);
    }
    if let Some(newline) = bytes[first..=last].iter().position(|b| *b == b'\n') {
        // JSON lines (SPADE records, or several W3C documents) when the first line is a whole
        // JSON value; otherwise one document spread over lines (pretty-printed).
        let mut probe = bytes[first..first + newline].to_vec();
        if parse_json(&mut probe, Some(1)).is_ok() {
            return decode_lines(&mut bytes);
        }
    }
    decode_json_object(&mut bytes[first..=last], None)
}

/// Decodes newline-separated JSON objects (SPADE records or W3C documents). A bad line
/// rejects the whole payload (it is one MQTT message), with the line number in the error.
pub fn decode_lines(bytes: &mut [u8]) -> Result<RecordBatch, DecodeError> {
    let mut batch = RecordBatch::default();
    for (i, line) in bytes.split_mut(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        batch.append(decode_json_object(line, Some(i + 1))?);
    }
    Ok(batch)
}

/// Decodes one JSON object: a W3C document or one SPADE record.
pub(crate) fn decode_json_object(
    bytes: &mut [u8],
    line: Option<usize>,
) -> Result<RecordBatch, DecodeError> {
    let value = parse_json(bytes, line)?;
    let Some(obj) = value.as_object() else {
        return Err(DecodeError::structure(
            "document",
            "expected a JSON object (a W3C document or a SPADE record)",
        ));
    };
    if obj.contains_key("type") && (obj.contains_key("id") || obj.contains_key("from")) {
        let mut batch = RecordBatch::default();
        spade::decode_record(&value, line.unwrap_or(1), &mut batch)?;
        Ok(batch)
    } else {
        w3c::decode_document(&value)
    }
}

pub(crate) fn parse_json(
    bytes: &mut [u8],
    line: Option<usize>,
) -> Result<BorrowedValue<'_>, DecodeError> {
    simd_json::to_borrowed_value(bytes).map_err(|e| DecodeError::Json {
        line,
        offset: e.index(),
        detail: format!("{:?}", e.error()),
    })
}

/// Converts a JSON value into a stored attribute value, keeping its kind.
pub(crate) fn to_value(v: &BorrowedValue<'_>) -> Value {
    match v {
        BorrowedValue::Static(simd_json::StaticNode::Null) => Value::Null,
        BorrowedValue::Static(simd_json::StaticNode::Bool(b)) => Value::Bool(*b),
        BorrowedValue::Static(simd_json::StaticNode::I64(i)) => Value::Int(*i),
        BorrowedValue::Static(simd_json::StaticNode::U64(u)) => match i64::try_from(*u) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(*u),
        },
        BorrowedValue::Static(simd_json::StaticNode::F64(f)) => Value::Float(*f),
        BorrowedValue::String(s) => Value::Str(s.to_string()),
        BorrowedValue::Array(_) | BorrowedValue::Object(_) => Value::Json(v.encode()),
    }
}

/// Reads a string or number as a u32 (`635200317`, `"635200317"`, `"cf:635200317"`).
pub(crate) fn as_u32_lenient(v: &BorrowedValue<'_>) -> Option<u32> {
    if let Some(n) = v.as_u64() {
        return u32::try_from(n).ok();
    }
    let s: &str = v.as_str()?;
    s.strip_prefix("cf:").unwrap_or(s).parse().ok()
}

/// Strips `cf:` from an id.
pub(crate) fn bare_id(s: &str) -> Cow<'_, str> {
    Cow::Borrowed(s.strip_prefix("cf:").unwrap_or(s))
}

/// Placement of a vertex from its identifier, falling back to attributes when the id is not
/// a 32-byte identifier (legacy machine descriptions).
pub(crate) fn vertex_placement(ext: &ExternalId, is_packet: bool, time: Option<i64>) -> Placement {
    match (NodeIdentifier::decode(ext), is_packet) {
        (Some(n), false) => Placement {
            machine: Some(n.machine),
            boot: Some(n.boot),
            version: Some(n.version),
            object_id: Some(n.id),
            time,
        },
        _ => Placement {
            time,
            ..Placement::default()
        },
    }
}

/// Placement of a relation from its identifier.
pub(crate) fn edge_placement(ext: &ExternalId, time: Option<i64>) -> Placement {
    match NodeIdentifier::decode(ext) {
        Some(n) => Placement {
            machine: Some(n.machine),
            boot: Some(n.boot),
            version: None,
            object_id: Some(n.id),
            time,
        },
        None => Placement {
            time,
            ..Placement::default()
        },
    }
}

/// Shortens long ids in error contexts.
pub(crate) fn short(s: &str) -> String {
    if s.len() > 48 {
        let mut end = 45;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s.to_owned()
    }
}
