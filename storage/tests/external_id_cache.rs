//! The external-id cache of a read-only store: the ids it returns for a list of vertices,
//! asked many times in any order, with repeats and with ids that do not exist, are the ones
//! the external id map holds, whether they were kept from an earlier list or not.

use std::collections::BTreeMap;

use proptest::prelude::*;
use provdb_storage::*;

mod common;
use common::{read_only, write_compacted, TYPES};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn kept_and_fresh_external_ids_are_the_written_ones(
        edges in prop::collection::vec((0..TYPES.len(), 0..12usize, 0..12usize), 1..40),
        lists in prop::collection::vec(prop::collection::vec(0..16u64, 0..10), 1..8),
        snapshot in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        write_compacted(dir.path(), &edges, snapshot);
        let reader = read_only(dir.path());
        // Expected from the other map (external id -> internal id) and the written names.
        let mut expected: BTreeMap<VertexId, ExternalId> = BTreeMap::new();
        for &(_, src, dst) in &edges {
            for v in [src, dst] {
                let ext = ExternalId::parse(&format!("v{v}"));
                let id = reader.vertex_id(&ext).unwrap().expect("written vertex");
                expected.insert(id, ext);
            }
        }
        // Ids 0..16 cover every vertex (at most 12) and some that do not exist.
        for list in lists.iter().chain(lists.iter().rev()) {
            let ids: Vec<VertexId> = list.iter().map(|&i| VertexId(i)).collect();
            let got = reader.vertex_external_ids(&ids).unwrap();
            let want: Vec<Option<ExternalId>> =
                ids.iter().map(|id| expected.get(id).cloned()).collect();
            prop_assert_eq!(&got, &want, "{:?}", ids);
            for (id, ext) in ids.iter().zip(&want) {
                prop_assert_eq!(&reader.vertex_external_id(*id).unwrap(), ext);
            }
        }
    }
}
