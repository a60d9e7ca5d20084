//! Value encoding: one format byte, then bincode 2 with a pinned configuration. The byte lets
//! a later release change the encoding without guessing.

use bincode::{Decode, Encode};

use crate::error::{Result, StorageError};
use crate::model::{Placement, ProvClass, ProvRelation, Value};

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

#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub(crate) struct StoredVertex {
    pub ext_id: StoredExternalId,
    pub type_id: u16,
    pub class: ProvClass,
    pub stub: bool,
    pub placement: Placement,
    pub attrs: Vec<(u16, Value)>,
}

#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub(crate) struct StoredEdge {
    pub ext_id: StoredExternalId,
    pub type_id: u16,
    pub relation: ProvRelation,
    pub src: u64,
    pub dst: u64,
    pub placement: Placement,
    pub attrs: Vec<(u16, Value)>,
}

pub(crate) fn encode<T: Encode>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    out.push(RECORD_FORMAT);
    bincode::encode_into_std_write(value, out, config())
        .map_err(|e| StorageError::corruption("record encoding", e.to_string()))?;
    Ok(())
}

pub(crate) fn decode<T: Decode<()>>(bytes: &[u8], what: &'static str) -> Result<T> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT, body)) => bincode::decode_from_slice(body, config())
            .map(|(v, _)| v)
            .map_err(|e| StorageError::corruption(what, e.to_string())),
        Some((other, _)) => Err(StorageError::corruption(
            what,
            format!("unknown record format byte {other}"),
        )),
        None => Err(StorageError::corruption(what, "empty value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
