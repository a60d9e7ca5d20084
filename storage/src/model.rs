//! The provenance graph data model: what a vertex and an edge are, independent of any wire
//! format. The CamFlow decoder produces [`VertexInput`]/[`EdgeInput`]; readers get
//! [`Vertex`]/[`Edge`].

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;

use crate::ids::{EdgeId, TypeId, VertexId};

/// W3C PROV class of a vertex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, bincode::Encode, bincode::Decode)]
pub enum ProvClass {
    /// `activity` (tasks).
    Activity,
    /// `entity` (files, sockets, paths, packets, ...).
    Entity,
    /// `agent` (machines).
    Agent,
    /// Not known yet: a stub vertex referenced by an edge before its definition arrived.
    Unknown,
}

impl ProvClass {
    /// Lower-case PROV name (`activity`, `entity`, `agent`, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProvClass::Activity => "activity",
            ProvClass::Entity => "entity",
            ProvClass::Agent => "agent",
            ProvClass::Unknown => "unknown",
        }
    }
}

/// W3C PROV relation of an edge (the PROV-JSON section or SPADE record type it came from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, bincode::Encode, bincode::Decode)]
pub enum ProvRelation {
    /// `used`: entity -> activity.
    Used,
    /// `wasGeneratedBy`: activity -> entity.
    WasGeneratedBy,
    /// `wasInformedBy`: activity -> activity.
    WasInformedBy,
    /// `wasDerivedFrom`: entity -> entity.
    WasDerivedFrom,
    /// `wasInfluencedBy`.
    WasInfluencedBy,
    /// `wasAssociatedWith`: agent -> activity.
    WasAssociatedWith,
    /// The pre-2017 `relation` section (`cf:sender` -> `cf:receiver`).
    Relation,
}

impl ProvRelation {
    /// PROV-JSON section name of the relation.
    pub fn as_str(self) -> &'static str {
        match self {
            ProvRelation::Used => "used",
            ProvRelation::WasGeneratedBy => "wasGeneratedBy",
            ProvRelation::WasInformedBy => "wasInformedBy",
            ProvRelation::WasDerivedFrom => "wasDerivedFrom",
            ProvRelation::WasInfluencedBy => "wasInfluencedBy",
            ProvRelation::WasAssociatedWith => "wasAssociatedWith",
            ProvRelation::Relation => "relation",
        }
    }
}

/// An attribute value, keeping the JSON kind it arrived with (CamFlow prints some integers
/// as numbers and others as quoted strings; both are kept as sent).
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub enum Value {
    /// JSON `null`.
    Null,
    /// JSON `true`/`false`.
    Bool(bool),
    /// A JSON number that fits an `i64`.
    Int(i64),
    /// A JSON number above `i64::MAX`.
    UInt(u64),
    /// A JSON number with a fraction or exponent.
    Float(f64),
    /// A JSON string.
    Str(String),
    /// A nested JSON object or array (e.g. `cf:address`), kept as its JSON text.
    Json(String),
}

impl Value {
    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an integer: a JSON integer, or a string holding a decimal integer (CamFlow
    /// quotes 64-bit integers).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::UInt(u) => i64::try_from(*u).ok(),
            Value::Str(s) => s.parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
            Value::Json(s) => f.write_str(s),
        }
    }
}

/// A CamFlow external identifier: the base64 text of the kernel's 32-byte identifier, without
/// the `cf:` prefix. Stored as the 32 raw bytes when it is one (smaller keys), else as text
/// (legacy machine descriptions are keyed by a decimal machine id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExternalId {
    /// A 32-byte CamFlow identifier.
    Binary([u8; 32]),
    /// Any other identifier text.
    Text(String),
}

impl ExternalId {
    /// Parses an id as it appears in CamFlow JSON, with or without `cf:`.
    ///
    /// ```
    /// use provdb_storage::ExternalId;
    /// let a = ExternalId::parse("cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=");
    /// let b = ExternalId::parse("AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=");
    /// assert_eq!(a, b);
    /// assert_eq!(a.to_string(), "AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=");
    /// assert_eq!(ExternalId::parse("635200317").to_string(), "635200317");
    /// ```
    pub fn parse(text: &str) -> ExternalId {
        let bare = text.strip_prefix("cf:").unwrap_or(text);
        if bare.len() == 44 {
            let mut out = [0u8; 32];
            // Only canonical encodings map to bytes, so that the text round-trips: the standard
            // engine refuses non-zero trailing bits and non-canonical padding, so a successful
            // decode is canonical without encoding it again (which cost 1% of an import).
            if let Ok(32) = base64::engine::general_purpose::STANDARD.decode_slice(bare, &mut out) {
                return ExternalId::Binary(out);
            }
        }
        ExternalId::Text(bare.to_owned())
    }

    /// The 32 identifier bytes, when the id is a CamFlow binary identifier.
    pub fn bytes(&self) -> Option<&[u8; 32]> {
        match self {
            ExternalId::Binary(b) => Some(b),
            ExternalId::Text(_) => None,
        }
    }

    /// The id as text, as [`fmt::Display`] writes it, in one allocation (`to_string` encodes
    /// into a buffer, then copies it through a formatter: a query returning ids does it per
    /// row).
    ///
    /// ```
    /// use provdb_storage::ExternalId;
    /// let id = ExternalId::parse("AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=");
    /// assert_eq!(id.to_text(), id.to_string());
    /// ```
    pub fn to_text(&self) -> String {
        match self {
            ExternalId::Binary(b) => base64::engine::general_purpose::STANDARD.encode(b),
            ExternalId::Text(s) => s.clone(),
        }
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExternalId::Binary(_) => f.write_str(&self.to_text()),
            ExternalId::Text(s) => f.write_str(s),
        }
    }
}

/// Where a record lives in the CamFlow identity space: machine, boot and version decoded from
/// the 32-byte identifier (not trusted from attributes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Placement {
    /// CamFlow machine id.
    pub machine: Option<u32>,
    /// Boot id on that machine.
    pub boot: Option<u32>,
    /// Object version (vertices only).
    pub version: Option<u32>,
    /// Kernel object id (`cf:id`) from the identifier.
    pub object_id: Option<u64>,
    /// Event time, Unix seconds (from `cf:date`).
    pub time: Option<i64>,
}

/// An attribute name as a decoder gives it. Names CamFlow uses are borrowed from the
/// decoder's table of them, others owned: a 1M-edge import decodes some 16
/// million attribute names, and an allocation (and a free) for each was a tenth of the
/// decoders' time. Build one with `.into()` from a `&'static str` or a `String`.
///
/// ```
/// use provdb_storage::Name;
/// let known: Name = "cf:id".into();
/// let other: Name = format!("cf:{}", "custom").into();
/// assert_eq!(known, "cf:id");
/// assert_eq!(other, "cf:custom");
/// ```
pub type Name = Cow<'static, str>;

/// A vertex as produced by a decoder, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct VertexInput {
    /// External id.
    pub ext_id: ExternalId,
    /// Type name (`task`, `file`, `machine`, ...).
    pub type_name: String,
    /// PROV class.
    pub class: ProvClass,
    /// Machine, boot, version, time.
    pub placement: Placement,
    /// Every other attribute, in arrival order.
    pub attrs: Vec<(Name, Value)>,
}

/// One endpoint of an [`EdgeInput`].
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointInput {
    /// External id of the vertex.
    pub ext_id: ExternalId,
    /// The vertex type, when the edge says it (SPADE's `from_type`/`to_type`); used for a stub.
    pub type_hint: Option<String>,
}

/// An edge as produced by a decoder, in information-flow direction (sender -> receiver).
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeInput {
    /// External relation id.
    pub ext_id: ExternalId,
    /// Type name (`read`, `write`, `clone`, ...).
    pub type_name: String,
    /// PROV relation.
    pub relation: ProvRelation,
    /// Sender.
    pub src: EndpointInput,
    /// Receiver.
    pub dst: EndpointInput,
    /// Machine, boot, time.
    pub placement: Placement,
    /// Every other attribute, in arrival order.
    pub attrs: Vec<(Name, Value)>,
}

/// A unit of writing: records plus counters to add, committed atomically.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordBatch {
    /// Vertices to store.
    pub vertices: Vec<VertexInput>,
    /// Edges to store.
    pub edges: Vec<EdgeInput>,
    /// Non-JSON lines skipped by the reader, added to the persistent counter.
    pub skipped_lines: u64,
    /// Documents rejected by the decoder, added to the persistent counter.
    pub rejected_documents: u64,
}

impl RecordBatch {
    /// Number of records (vertices and edges).
    pub fn len(&self) -> usize {
        self.vertices.len() + self.edges.len()
    }

    /// True when the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.vertices.is_empty() && self.edges.is_empty()
    }

    /// Appends another batch.
    pub fn append(&mut self, mut other: RecordBatch) {
        self.vertices.append(&mut other.vertices);
        self.edges.append(&mut other.edges);
        self.skipped_lines += other.skipped_lines;
        self.rejected_documents += other.rejected_documents;
    }
}

/// A stored vertex, as readers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Vertex {
    /// Internal id.
    pub id: VertexId,
    /// External id.
    pub ext_id: ExternalId,
    /// Type id.
    pub type_id: TypeId,
    /// Type name.
    pub type_name: Arc<str>,
    /// PROV class.
    pub class: ProvClass,
    /// True while only referenced by edges, not yet defined.
    pub stub: bool,
    /// Machine, boot, version, time.
    pub placement: Placement,
    /// Attributes with their keys.
    pub attrs: Vec<(Arc<str>, Value)>,
}

/// A stored edge, as readers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// Internal id.
    pub id: EdgeId,
    /// External relation id.
    pub ext_id: ExternalId,
    /// Type id.
    pub type_id: TypeId,
    /// Type name.
    pub type_name: Arc<str>,
    /// PROV relation.
    pub relation: ProvRelation,
    /// Sender.
    pub src: VertexId,
    /// Receiver.
    pub dst: VertexId,
    /// Machine, boot, time.
    pub placement: Placement,
    /// Attributes with their keys.
    pub attrs: Vec<(Arc<str>, Value)>,
}

/// Looks an attribute up by key, with or without the `cf:` prefix.
pub fn find_attr<'a>(attrs: &'a [(Arc<str>, Value)], key: &str) -> Option<&'a Value> {
    let bare = key.strip_prefix("cf:").unwrap_or(key);
    attrs
        .iter()
        .find(|(k, _)| {
            let k: &str = k;
            k == key || k.strip_prefix("cf:").unwrap_or(k) == bare
        })
        .map(|(_, v)| v)
}

/// Direction of a hop, relative to stored (information-flow) direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Follow edges from sender to receiver.
    Out,
    /// Follow edges from receiver to sender.
    In,
    /// Both.
    Both,
}

/// One entry of an adjacency scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adjacent {
    /// The edge.
    pub edge: EdgeId,
    /// Its type.
    pub edge_type: TypeId,
    /// The vertex at the other end.
    pub neighbour: VertexId,
    /// `Out` when the edge leaves the scanned vertex, `In` when it enters it.
    pub direction: Direction,
}

#[cfg(test)]
mod tests {
    use super::ExternalId;
    use base64::Engine;
    use proptest::prelude::*;

    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

    /// Every last data character of a 32-byte identifier: only the four whose two trailing
    /// bits are zero are canonical; the others are kept as text, as written.
    #[test]
    fn non_canonical_trailing_bits_stay_text() {
        let canonical = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let mut binary = 0;
        for c in ALPHABET.iter().take(64) {
            let mut text = canonical.clone().into_bytes();
            text[42] = *c;
            let text = String::from_utf8(text).unwrap();
            let id = ExternalId::parse(&text);
            assert_eq!(id.to_text(), text);
            binary += usize::from(id.bytes().is_some());
        }
        assert_eq!(binary, 16);
    }

    proptest! {
        /// Any 44 characters of the alphabet: parsed as bytes exactly when encoding those bytes
        /// gives the text back, and the text always round-trips.
        #[test]
        fn parse_round_trips(
            mut text in proptest::collection::vec(proptest::sample::select(ALPHABET), 43),
            last in proptest::sample::select(b"==A".as_slice()),
        ) {
            text.push(last);
            let text = String::from_utf8(text).unwrap();
            let id = ExternalId::parse(&text);
            prop_assert_eq!(id.to_text(), text.clone());
            let mut out = [0u8; 32];
            let decodes = matches!(
                base64::engine::general_purpose::STANDARD.decode_slice(&text, &mut out),
                Ok(32)
            );
            let canonical = decodes && base64::engine::general_purpose::STANDARD.encode(out) == text;
            prop_assert_eq!(id.bytes().is_some(), canonical);
        }

        /// Every 32-byte identifier, encoded, parses to its bytes.
        #[test]
        fn identifiers_parse_to_their_bytes(bytes in proptest::array::uniform32(any::<u8>())) {
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            let id = ExternalId::parse(&format!("cf:{text}"));
            prop_assert_eq!(id.bytes(), Some(&bytes));
        }
    }
}
