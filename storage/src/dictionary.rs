//! Interned names (vertex types, edge types, attribute keys). Stored in `meta` (keys in
//! `keys.rs`), loaded whole at open: they are small (hundreds of names).

use std::sync::Arc;

// Names come from the input (attribute names of possibly compromised machines): a seeded
// hasher, and a fast one, since every attribute of every record is looked up here.
use foldhash::HashMap;

use crate::codec;
use crate::error::{ReadError, WriteError};
use crate::keys;
use crate::tables::{Table, Tables};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DictKind {
    VertexType,
    EdgeType,
    AttrKey,
}

impl DictKind {
    pub(crate) const ALL: [DictKind; 3] =
        [DictKind::VertexType, DictKind::EdgeType, DictKind::AttrKey];

    pub(crate) fn prefix(self) -> &'static [u8] {
        match self {
            DictKind::VertexType => keys::DICT_VERTEX_TYPES,
            DictKind::EdgeType => keys::DICT_EDGE_TYPES,
            DictKind::AttrKey => keys::DICT_ATTR_KEYS,
        }
    }

    fn what(self) -> &'static str {
        match self {
            DictKind::VertexType => "vertex types",
            DictKind::EdgeType => "edge types",
            DictKind::AttrKey => "attribute keys",
        }
    }

    pub(crate) fn meta_key(self, id: u16) -> Vec<u8> {
        keys::dict_key(self.prefix(), id)
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Dictionary {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u16>,
}

impl Dictionary {
    pub(crate) fn get(&self, name: &str) -> Option<u16> {
        self.ids.get(name).copied()
    }

    pub(crate) fn name(&self, id: u16) -> Option<&Arc<str>> {
        self.names.get(usize::from(id))
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = (u16, &Arc<str>)> {
        self.names.iter().enumerate().map(|(i, n)| (i as u16, n))
    }

    /// Loads one entry read from `meta`; entries arrive in id order.
    pub(crate) fn load(&mut self, kind: DictKind, id: u16, name: &str) -> Result<(), ReadError> {
        if usize::from(id) != self.names.len() {
            return Err(ReadError::corruption(
                "dictionary",
                format!("{} id {id} out of sequence", kind.what()),
            ));
        }
        self.push(name);
        Ok(())
    }

    /// Interns `name`, returning its id and whether it is new.
    pub(crate) fn intern(&mut self, kind: DictKind, name: &str) -> Result<(u16, bool), WriteError> {
        if let Some(id) = self.get(name) {
            return Ok((id, false));
        }
        if self.names.len() >= usize::from(u16::MAX) {
            return Err(WriteError::DictionaryFull {
                what: kind.what(),
                limit: usize::from(u16::MAX),
            });
        }
        Ok((self.push(name), true))
    }

    fn push(&mut self, name: &str) -> u16 {
        let id = self.names.len() as u16;
        let name: Arc<str> = Arc::from(name);
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }
}

/// The three dictionaries of a store.
#[derive(Debug, Default, Clone)]
pub(crate) struct Dictionaries {
    pub vertex_types: Dictionary,
    pub edge_types: Dictionary,
    pub attr_keys: Dictionary,
}

impl Dictionaries {
    /// Reads the three dictionaries from `meta`.
    pub(crate) fn load(tables: &Tables) -> Result<Dictionaries, ReadError> {
        let mut dicts = Dictionaries::default();
        let meta = tables.cf(Table::Meta)?;
        for kind in DictKind::ALL {
            let dict = dicts.get_mut(kind);
            for item in tables.scan_prefix(meta, kind.prefix()) {
                let (k, v) = item?;
                let id = keys::decode_dict_key(kind.prefix(), &k)
                    .ok_or_else(|| ReadError::corruption("dictionary", "bad key"))?;
                dict.load(kind, id, codec::decode_name(&v)?)?;
            }
        }
        Ok(dicts)
    }

    pub(crate) fn get_mut(&mut self, kind: DictKind) -> &mut Dictionary {
        match kind {
            DictKind::VertexType => &mut self.vertex_types,
            DictKind::EdgeType => &mut self.edge_types,
            DictKind::AttrKey => &mut self.attr_keys,
        }
    }
}
