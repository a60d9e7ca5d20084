//! Value encoding: one format byte, then bincode 2 with a pinned configuration. The byte lets
//! a later release change the encoding without guessing.

use bincode::{Decode, Encode};

use crate::error::{ReadError, WriteError};
use crate::model::{ExternalId, Name, Placement, ProvClass, ProvRelation, Value};

/// Format byte of every record value written by this build.
pub(crate) const RECORD_FORMAT: u8 = 1;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// External id as stored inside records.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub(crate) enum StoredExternalId {
    Binary([u8; 32]),
    Text(String),
}

impl From<&ExternalId> for StoredExternalId {
    fn from(ext: &ExternalId) -> Self {
        match ext {
            ExternalId::Binary(b) => StoredExternalId::Binary(*b),
            ExternalId::Text(t) => StoredExternalId::Text(t.clone()),
        }
    }
}

impl From<StoredExternalId> for ExternalId {
    fn from(ext: StoredExternalId) -> Self {
        match ext {
            StoredExternalId::Binary(b) => ExternalId::Binary(b),
            StoredExternalId::Text(t) => ExternalId::Text(t),
        }
    }
}

/// A vertex record. `A` is how its attributes are held: owned when read
/// (`Vec<(u16, Value)>`), borrowed from the input when written ([`KeyedAttrs`]); both encode
/// to the same bytes.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub(crate) struct StoredVertex<A = Vec<(u16, Value)>> {
    pub ext_id: StoredExternalId,
    pub type_id: u16,
    pub class: ProvClass,
    pub stub: bool,
    pub placement: Placement,
    pub attrs: A,
}

/// An edge record; `A` as in [`StoredVertex`].
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub(crate) struct StoredEdge<A = Vec<(u16, Value)>> {
    pub ext_id: StoredExternalId,
    pub type_id: u16,
    pub relation: ProvRelation,
    pub src: u64,
    pub dst: u64,
    pub placement: Placement,
    pub attrs: A,
}

/// Attributes to write, borrowed from the input: the dictionary id of each key beside the
/// input's (name, value) pairs. Encoded exactly as bincode encodes the `Vec<(u16, Value)>`
/// they are read back as, without copying a value (copies were ~12% of the writing thread).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyedAttrs<'a> {
    key_ids: &'a [u16],
    pairs: &'a [(Name, Value)],
}

impl<'a> KeyedAttrs<'a> {
    /// `key_ids[i]` is the id of `pairs[i]`'s name; an error when the lengths differ.
    pub(crate) fn new(key_ids: &'a [u16], pairs: &'a [(Name, Value)]) -> Result<Self, WriteError> {
        if key_ids.len() != pairs.len() {
            return Err(WriteError::corruption(
                "attributes",
                "key ids out of step with names",
            ));
        }
        Ok(KeyedAttrs { key_ids, pairs })
    }
}

impl Encode for KeyedAttrs<'_> {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        encoder: &mut E,
    ) -> Result<(), bincode::error::EncodeError> {
        // A `Vec`'s encoding: its length as a u64, then each element (a tuple: its fields).
        (self.pairs.len() as u64).encode(encoder)?;
        for (id, (_, value)) in self.key_ids.iter().zip(self.pairs) {
            id.encode(encoder)?;
            value.encode(encoder)?;
        }
        Ok(())
    }
}

/// Encodes the value of a counter of `meta` (8 bytes, big-endian).
pub(crate) fn encode_counter(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

/// Decodes a value written by [`encode_counter`].
pub(crate) fn decode_counter(v: &[u8]) -> Result<u64, ReadError> {
    v.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| ReadError::corruption("counter", "not 8 bytes"))
}

/// Encodes the format version kept in `meta` (4 bytes, big-endian).
pub(crate) fn encode_format(version: u32) -> [u8; 4] {
    version.to_be_bytes()
}

/// Decodes a value written by [`encode_format`].
pub(crate) fn decode_format(v: &[u8]) -> Result<u32, ReadError> {
    v.try_into()
        .map(u32::from_be_bytes)
        .map_err(|_| ReadError::corruption("format version", "not 4 bytes"))
}

/// What `meta` says of the archive's adjacency snapshot: its generation (which file it is)
/// and its edge mark (it holds every adjacency entry of the edges below it, as of the fold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SnapshotPointer {
    pub(crate) generation: u64,
    pub(crate) edge_mark: u64,
}

/// Encodes the adjacency snapshot pointer: generation and edge mark, 8 bytes each, big-endian.
pub(crate) fn encode_snapshot_pointer(pointer: SnapshotPointer) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&pointer.generation.to_be_bytes());
    v[8..].copy_from_slice(&pointer.edge_mark.to_be_bytes());
    v
}

/// Decodes a value written by [`encode_snapshot_pointer`].
pub(crate) fn decode_snapshot_pointer(v: &[u8]) -> Result<SnapshotPointer, ReadError> {
    let word = |range: std::ops::Range<usize>| {
        v.get(range)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
    };
    match (v.len(), word(0..8), word(8..16)) {
        (16, Some(generation), Some(edge_mark)) => Ok(SnapshotPointer {
            generation,
            edge_mark,
        }),
        (n, _, _) => Err(ReadError::corruption(
            "adjacency snapshot pointer",
            format!("{n} bytes, not 16"),
        )),
    }
}

/// Decodes a dictionary entry's value: the name, in UTF-8.
pub(crate) fn decode_name(v: &[u8]) -> Result<&str, ReadError> {
    std::str::from_utf8(v).map_err(|_| ReadError::corruption("dictionary", "name is not UTF-8"))
}

/// Encodes the value of an `external_ids` entry: the internal id (8 bytes, big-endian), then
/// for a stub vertex its type hint (2 bytes), so that defining the vertex later can take the
/// stub out of its type index without reading the record. Returns the buffer and its length.
pub(crate) fn encode_external_value(id: u64, stub_type: Option<u16>) -> ([u8; 10], usize) {
    let mut value = [0u8; 10];
    value[..8].copy_from_slice(&id.to_be_bytes());
    match stub_type {
        Some(t) => {
            value[8..].copy_from_slice(&t.to_be_bytes());
            (value, 10)
        }
        None => (value, 8),
    }
}

/// Decodes an `external_ids` value: (internal id, stub type hint).
pub(crate) fn decode_external_value(v: &[u8]) -> Result<(u64, Option<u16>), ReadError> {
    let id = v
        .get(0..8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| ReadError::corruption("external id entry", "short value"))?;
    let stub = match v.len() {
        8 => None,
        10 => Some(u16::from_be_bytes([v[8], v[9]])),
        n => {
            return Err(ReadError::corruption(
                "external id entry",
                format!("value of {n} bytes"),
            ))
        }
    };
    Ok((id, stub))
}

/// Tag byte of a binary id in the `vertex_external_ids` table (then its 32 bytes).
const EXTERNAL_BINARY: u8 = b'b';
/// Tag byte of a text id in the `vertex_external_ids` table (then its UTF-8 bytes).
const EXTERNAL_TEXT: u8 = b't';

/// Encodes the value of a `vertex_external_ids` entry: a tag byte, then the id's bytes. Not
/// bincode: the map is read for every returned id, so it decodes with a copy, no allocation
/// for binary ids.
pub(crate) fn encode_external_id(ext: &ExternalId, out: &mut Vec<u8>) {
    out.clear();
    match ext {
        ExternalId::Binary(b) => {
            out.push(EXTERNAL_BINARY);
            out.extend_from_slice(b);
        }
        ExternalId::Text(t) => {
            out.push(EXTERNAL_TEXT);
            out.extend_from_slice(t.as_bytes());
        }
    }
}

/// Decodes a value written by [`encode_external_id`].
pub(crate) fn decode_external_id(bytes: &[u8]) -> Result<ExternalId, ReadError> {
    match bytes.split_first() {
        Some((&EXTERNAL_BINARY, body)) => body.try_into().map(ExternalId::Binary).map_err(|_| {
            ReadError::corruption("vertex external id", "binary id of a wrong length")
        }),
        Some((&EXTERNAL_TEXT, body)) => std::str::from_utf8(body)
            .map(|t| ExternalId::Text(t.to_owned()))
            .map_err(|_| ReadError::corruption("vertex external id", "text id is not UTF-8")),
        _ => Err(ReadError::corruption("vertex external id", "unknown tag")),
    }
}

pub(crate) fn encode<T: Encode>(value: &T, out: &mut Vec<u8>) -> Result<(), WriteError> {
    out.clear();
    out.push(RECORD_FORMAT);
    bincode::encode_into_std_write(value, out, config())
        .map_err(|e| WriteError::corruption("record encoding", e.to_string()))?;
    Ok(())
}

pub(crate) fn decode<T: Decode<()>>(bytes: &[u8], what: &'static str) -> Result<T, ReadError> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT, body)) => bincode::decode_from_slice(body, config())
            .map(|(v, _)| v)
            .map_err(|e| ReadError::corruption(what, e.to_string())),
        Some((other, _)) => Err(ReadError::corruption(
            what,
            format!("unknown record format byte {other}"),
        )),
        None => Err(ReadError::corruption(what, "empty value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The pointer a damaged `meta` holds: any bytes decode to the pointer they encode
        /// (16 bytes) or to a corruption error, never a panic.
        #[test]
        fn snapshot_pointers_round_trip_and_any_other_length_is_refused(
            generation in any::<u64>(),
            edge_mark in any::<u64>(),
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let pointer = SnapshotPointer { generation, edge_mark };
            prop_assert_eq!(decode_snapshot_pointer(&encode_snapshot_pointer(pointer)).ok(), Some(pointer));
            match decode_snapshot_pointer(&bytes) {
                Ok(found) => {
                    prop_assert_eq!(bytes.len(), 16);
                    let mut expected = found.generation.to_be_bytes().to_vec();
                    expected.extend_from_slice(&found.edge_mark.to_be_bytes());
                    prop_assert_eq!(expected, bytes);
                }
                Err(ReadError::Corruption { what, .. }) => {
                    prop_assert_eq!(what, "adjacency snapshot pointer");
                    prop_assert_ne!(bytes.len(), 16);
                }
                Err(e) => prop_assert!(false, "unexpected error {}", e),
            }
        }
    }

    #[test]
    fn external_ids_round_trip_and_reject_damage() {
        let mut buf = Vec::new();
        for ext in [
            ExternalId::Binary([9; 32]),
            ExternalId::Text("635200317".into()),
            // A 31-byte text id is 32 bytes with its tag: the tag, not the length, decides.
            ExternalId::Text("x".repeat(31)),
        ] {
            encode_external_id(&ext, &mut buf);
            assert_eq!(decode_external_id(&buf).unwrap(), ext);
        }
        encode_external_id(&ExternalId::Binary([9; 32]), &mut buf);
        assert!(decode_external_id(&buf[..20]).is_err());
        assert!(decode_external_id(&[b't', 0xff]).is_err());
        assert!(decode_external_id(&[b'?', 1]).is_err());
        assert!(decode_external_id(&[]).is_err());
    }

    #[test]
    fn vertex_round_trips_with_format_byte() {
        let v = StoredVertex {
            ext_id: StoredExternalId::Binary([7; 32]),
            type_id: 3,
            class: ProvClass::Activity,
            stub: false,
            placement: Placement {
                machine: Some(1),
                boot: Some(2),
                version: Some(3),
                object_id: Some(4),
                time: Some(-5),
            },
            attrs: vec![(1, Value::Str("x".into())), (2, Value::UInt(u64::MAX))],
        };
        let mut buf = Vec::new();
        encode(&v, &mut buf).unwrap();
        assert_eq!(buf[0], RECORD_FORMAT);
        assert_eq!(decode::<StoredVertex>(&buf, "vertex").unwrap(), v);
        buf[0] = 99;
        assert!(decode::<StoredVertex>(&buf, "vertex").is_err());
        assert!(decode::<StoredVertex>(&[], "vertex").is_err());
        assert!(decode::<StoredVertex>(&[RECORD_FORMAT, 1], "vertex").is_err());
    }

    #[test]
    fn borrowed_attributes_encode_as_the_owned_record() {
        let pairs = vec![
            (Name::from("cf:uid"), Value::Int(-3)),
            (Name::from("cf:path"), Value::Str("/etc/passwd".into())),
            (Name::from("cf:flag"), Value::Bool(true)),
            (Name::from("cf:none"), Value::Null),
            (Name::from("cf:big"), Value::UInt(u64::MAX)),
            (Name::from("cf:ratio"), Value::Float(0.25)),
        ];
        let key_ids: Vec<u16> = vec![4, 300, 7, 1, 65535, 0];
        let owned = StoredEdge {
            ext_id: StoredExternalId::Text("e:1".into()),
            type_id: 9,
            relation: ProvRelation::Used,
            src: 1,
            dst: u64::MAX,
            placement: Placement::default(),
            attrs: key_ids
                .iter()
                .zip(&pairs)
                .map(|(id, (_, v))| (*id, v.clone()))
                .collect::<Vec<_>>(),
        };
        let borrowed = StoredEdge {
            ext_id: owned.ext_id.clone(),
            type_id: owned.type_id,
            relation: owned.relation,
            src: owned.src,
            dst: owned.dst,
            placement: owned.placement,
            attrs: KeyedAttrs::new(&key_ids, &pairs).unwrap(),
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode(&owned, &mut a).unwrap();
        encode(&borrowed, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(decode::<StoredEdge>(&b, "edge").unwrap(), owned);
        assert!(KeyedAttrs::new(&key_ids[1..], &pairs).is_err());
    }
}
