//! CamFlow decoding: MQTT payload bytes or log-file text -> storage records.
//!
//! * [`payload`]: base64 + zlib envelope with an inflate cap.
//! * [`w3c`]: W3C PROV-JSON documents of every CamFlow version (bare or `cf:` ids, numeric or
//!   `"cf:N"` machine ids, the old `relation` section, legacy machine descriptions).
//! * [`spade`]: SPADE JSON lines and the legacy SPADE JSON array.
//! * [`identifier`]: the kernel's 32-byte identifiers; [`date`]: `cf:date`;
//!   [`attribute_name`]: the attribute names CamFlow writes, borrowed rather than copied.
//!
//! Edges come out in information-flow direction (sender -> receiver).

pub mod date;
mod error;
pub mod identifier;
mod names;
pub mod payload;
pub mod spade;
pub mod w3c;

use std::borrow::Cow;

use provdb_storage::{ExternalId, Placement, RecordBatch, Value};
use simd_json::prelude::*;
/// simd-json's tape read in place: what the W3C and SPADE decoders walk.
pub(crate) use simd_json::value::tape::{Object as JsonObject, Value as JsonValue};
use simd_json::Tape;

pub use error::DecodeError;
pub use names::attribute_name;
pub use payload::DEFAULT_MAX_INFLATED;

/// Default cap on one line or one multi-line document of an imported file: 64 MiB (camflowd
/// documents are under 100 KiB; the largest real multi-line file seen is 130 KB).
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 64 << 20;

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
    classify_bytes(line.trim().as_bytes())
}

/// [`classify_line`] on bytes (surrounding ASCII whitespace ignored).
pub fn classify_bytes(line: &[u8]) -> TextKind {
    let t = line.trim_ascii();
    match t.first() {
        Some(b'{') | Some(b'[') => TextKind::Json,
        Some(_)
            if t.len() >= 8
                && t.iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')) =>
        {
            TextKind::Payload
        }
        _ => TextKind::Other,
    }
}

/// What the start of a text (a file, a payload) says about how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    /// The kind of its first line.
    pub kind: TextKind,
    /// Its first JSON value continues past the first line, so the text is one document (a
    /// pretty-printed W3C document or a SPADE JSON array), not one document per line.
    pub spans_lines: bool,
}

/// Judges a text from its first line: the one place that decides between "one document per
/// line" and "one document over many lines". A first line that opens an object or array and
/// ends between tokens without closing it (`{`, `"prefix":{`, ...) starts a multi-line
/// document; a SPADE array (`[`) is always read whole. A line cut inside a string is a
/// damaged one-line document, not the start of a multi-line one.
///
/// ```
/// use provdb::decode::{sniff, TextKind};
/// assert!(sniff(b"{\n  \"prefix\": {}\n}\n").spans_lines);
/// assert!(!sniff(b"{\"prefix\":{}}\n{\"prefix\":{}}\n").spans_lines);
/// assert!(!sniff(b"{\"prefix\":{\"cf\":\"http://www.cam").spans_lines);
/// assert_eq!(sniff(b"Starting audit service...\n{").kind, TextKind::Other);
/// ```
pub fn sniff(text: &[u8]) -> Sniffed {
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let text = &text[start..];
    let first_line = match memchr::memchr(b'\n', text) {
        Some(end) => &text[..end],
        None => text,
    };
    let kind = classify_bytes(first_line);
    let spans_lines = kind == TextKind::Json
        && (first_line.first() == Some(&b'[')
            || match scan_nesting(first_line, usize::MAX) {
                Ok(n) => n.depth > 0 && !n.in_string && first_line.len() < text.len(),
                Err(_) => false,
            });
    Sniffed { kind, spans_lines }
}

/// Deepest JSON nesting accepted. CamFlow documents nest about 4 deep (document, section,
/// element, `cf:address`); the parser recurses once per level, so a limit keeps hostile
/// input from overflowing the stack.
pub const MAX_JSON_DEPTH: usize = 64;

/// Where a scan of JSON text ended.
#[derive(Debug, Clone, Copy)]
struct Nesting {
    /// Open objects and arrays at the end.
    depth: usize,
    /// The text ended inside a string.
    in_string: bool,
}

/// Counts bracket nesting outside strings (honouring `\` escapes) without parsing. Returns
/// the byte offset of the first bracket deeper than `limit` as the error. Strings are
/// skipped with `memchr`, so this costs little next to parsing.
fn scan_nesting(bytes: &[u8], limit: usize) -> Result<Nesting, usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                i += 1;
                loop {
                    let rest = bytes.get(i..).unwrap_or(&[]);
                    match string_stop(rest) {
                        None => {
                            return Ok(Nesting {
                                depth,
                                in_string: true,
                            })
                        }
                        Some(k) if rest[k] == b'\\' => i += k + 2,
                        Some(k) => {
                            i += k + 1;
                            break;
                        }
                    }
                }
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return Err(i);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(Nesting {
        depth,
        in_string: false,
    })
}

/// The offset of the first bracket deeper than `limit`, as [`scan_nesting`] finds it. Text
/// holding no more `{` and `[` bytes than `limit`, wherever they are, cannot nest deeper, and
/// `memchr` counts them fast (SIMD): that spares the scan most CamFlow documents (97% of a
/// bench log's lines hold at most 64; the scan was ~3% of an import's CPU).
fn check_nesting(bytes: &[u8], limit: usize) -> Result<(), usize> {
    let openers = memchr::memchr2_iter(b'{', b'[', bytes)
        .take(limit.saturating_add(1))
        .count();
    if openers <= limit {
        return Ok(());
    }
    scan_nesting(bytes, limit).map(|_| ())
}

/// The offset of the first `"` or `\` in `rest`. Most of CamFlow's strings are short: a byte
/// loop finds their end before a `memchr` call would have paid for itself (the scan was 14% of
/// a decoder's time with `memchr` alone); longer ones go on with `memchr`.
fn string_stop(rest: &[u8]) -> Option<usize> {
    const SHORT: usize = 24;
    let head = rest.get(..SHORT).unwrap_or(rest);
    if let Some(k) = head.iter().position(|&c| c == b'"' || c == b'\\') {
        return Some(k);
    }
    let tail = rest.get(SHORT..)?;
    memchr::memchr2(b'"', b'\\', tail).map(|k| k + SHORT)
}

/// Runs a decoder, turning a panic inside it into [`DecodeError::Internal`], so that one
/// document that trips a bug is rejected and the rest of the work goes on.
///
/// ```
/// let r: Result<(), _> = provdb::decode::decode_guarded(|| panic!("boom"));
/// assert_eq!(r.unwrap_err().kind(), "internal");
/// ```
pub fn decode_guarded<T>(
    decode: impl FnOnce() -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).unwrap_or_else(|panic| {
        let detail = if let Some(s) = panic.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = panic.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic".to_owned()
        };
        Err(DecodeError::Internal { detail })
    })
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
    let text = &mut bytes[first..=last];
    if text[0] == b'[' {
        return spade::decode_array(text);
    }
    // JSON lines (SPADE records, or several W3C documents), unless the first line opens a
    // document that goes on (pretty-printed).
    if text.contains(&b'\n') && !sniff(text).spans_lines {
        return decode_lines(text);
    }
    decode_json_object(text, None)
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
    let tape = parse_json(bytes, line)?;
    let Some(obj) = tape.as_value().as_object() else {
        return Err(DecodeError::structure(
            "document",
            "expected a JSON object (a W3C document or a SPADE record)",
        ));
    };
    if obj.get("type").is_some() && (obj.get("id").is_some() || obj.get("from").is_some()) {
        let mut batch = RecordBatch::default();
        spade::decode_record(&obj, line.unwrap_or(1), &mut batch)?;
        Ok(batch)
    } else {
        w3c::decode_document(&obj)
    }
}

/// The only JSON parser of the decoders: refuses nesting deeper than [`MAX_JSON_DEPTH`]
/// before simd-json (which recurses per level) sees it. The decoders read simd-json's tape
/// as it is, without building a tree of maps from it (which, with its allocations and key
/// hashing, cost about 4% of an import's CPU); objects are small, and a look-up is a scan.
pub(crate) fn parse_json(bytes: &mut [u8], line: Option<usize>) -> Result<Tape<'_>, DecodeError> {
    if let Err(offset) = check_nesting(bytes, MAX_JSON_DEPTH) {
        return Err(DecodeError::TooDeep {
            limit: MAX_JSON_DEPTH,
            offset,
        });
    }
    simd_json::to_tape(bytes).map_err(|e| DecodeError::Json {
        line,
        offset: e.index(),
        detail: format!("{:?}", e.error()),
    })
}

/// The object a JSON value is, or a structure error naming `context`.
pub(crate) fn expect_object<'t, 'i>(
    value: JsonValue<'t, 'i>,
    context: impl FnOnce() -> String,
    detail: &'static str,
) -> Result<JsonObject<'t, 'i>, DecodeError> {
    value
        .as_object()
        .ok_or_else(|| DecodeError::structure(context(), detail))
}

/// Converts a JSON value into a stored attribute value, keeping its kind.
pub(crate) fn to_value(v: JsonValue<'_, '_>) -> Value {
    use simd_json::ValueType;
    match v.value_type() {
        ValueType::Bool => v.as_bool().map_or(Value::Null, Value::Bool),
        ValueType::I64 => v.as_i64().map_or(Value::Null, Value::Int),
        ValueType::U64 => match v.as_u64().map(i64::try_from) {
            Some(Ok(i)) => Value::Int(i),
            Some(Err(_)) => v.as_u64().map_or(Value::Null, Value::UInt),
            None => Value::Null,
        },
        ValueType::F64 => v.as_f64().map_or(Value::Null, Value::Float),
        ValueType::String => v.as_str().map_or(Value::Null, |s| Value::Str(s.to_owned())),
        ValueType::Array | ValueType::Object => Value::Json(v.encode()),
        _ => Value::Null,
    }
}

/// Reads a string or number as a u32 (`635200317`, `"635200317"`, `"cf:635200317"`).
pub(crate) fn as_u32_lenient(v: JsonValue<'_, '_>) -> Option<u32> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The scan as a plain state machine over every byte, without `memchr` or a short-string
    /// path: what `scan_nesting` must agree with.
    fn reference_nesting(bytes: &[u8], limit: usize) -> Result<Nesting, usize> {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for (i, &b) in bytes.iter().enumerate() {
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > limit {
                        return Err(i);
                    }
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        Ok(Nesting { depth, in_string })
    }

    proptest! {
        /// Strings short and long (past the byte loop's reach), escapes, brackets inside and
        /// outside strings: the scan agrees with the plain state machine.
        #[test]
        fn nesting_scan_agrees_with_a_plain_state_machine(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just(b"\"".to_vec()),
                    Just(b"\\".to_vec()),
                    Just(b"{".to_vec()),
                    Just(b"[".to_vec()),
                    Just(b"}".to_vec()),
                    Just(b"]".to_vec()),
                    proptest::collection::vec(b'a'..=b'c', 1..40),
                ],
                0..60,
            ),
            limit in 0usize..8,
        ) {
            let bytes: Vec<u8> = parts.concat();
            let got = scan_nesting(&bytes, limit).map(|n| (n.depth, n.in_string));
            let expected = reference_nesting(&bytes, limit).map(|n| (n.depth, n.in_string));
            prop_assert_eq!(got, expected);
            // The counting shortcut refuses exactly what the scan refuses, at the same offset.
            let checked = check_nesting(&bytes, limit);
            prop_assert_eq!(checked, expected.map(|_| ()));
        }
    }
}
