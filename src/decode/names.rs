//! The attribute names CamFlow writes, so that decoded records borrow them instead of
//! allocating a copy of each (a 1M-edge log holds some 16 million of them).

use std::collections::HashSet;
use std::sync::LazyLock;

use provdb_storage::Name;

/// Every `cf:` attribute name of the CamFlow versions in `docs/research/camflow-format.md`
/// (W3C PROV-JSON); SPADE JSON writes the same names without the prefix.
const CAMFLOW_ATTRIBUTES: &[&str] = &[
    "cf:address",
    "cf:allowed",
    "cf:atime",
    "cf:boot_id",
    "cf:camflow",
    "cf:cancel_wbytes",
    "cf:cgroup_namespace",
    "cf:cgroupns",
    "cf:cid",
    "cf:content",
    "cf:ctime",
    "cf:date",
    "cf:epoch",
    "cf:flags",
    "cf:gid",
    "cf:hw_rss",
    "cf:hw_vm",
    "cf:id",
    "cf:ino",
    "cf:ipc_namespace",
    "cf:ipcns",
    "cf:jiffies",
    "cf:k_commit",
    "cf:k_version",
    "cf:l_commit",
    "cf:l_version",
    "cf:len",
    "cf:length",
    "cf:lsm_list",
    "cf:machine",
    "cf:machine_id",
    "cf:mnt_namespace",
    "cf:mntns",
    "cf:mode",
    "cf:mtime",
    "cf:name",
    "cf:net_namespace",
    "cf:netns",
    "cf:nodename",
    "cf:object_id",
    "cf:object_type",
    "cf:offset",
    "cf:pathname",
    "cf:pid",
    "cf:pid_namespace",
    "cf:pidns",
    "cf:rbytes",
    "cf:rcv_boot_id",
    "cf:rcv_id",
    "cf:rcv_machine_id",
    "cf:rcv_type",
    "cf:receiver",
    "cf:relation_id",
    "cf:relation_type",
    "cf:release",
    "cf:rss",
    "cf:secctx",
    "cf:sender",
    "cf:seq",
    "cf:size",
    "cf:snd_boot_id",
    "cf:snd_id",
    "cf:snd_machine_id",
    "cf:snd_type",
    "cf:stime",
    "cf:sysname",
    "cf:taint",
    "cf:task_id",
    "cf:tgid",
    "cf:truncated",
    "cf:type",
    "cf:u_domainname",
    "cf:u_machine",
    "cf:u_nodename",
    "cf:u_release",
    "cf:u_sysname",
    "cf:u_version",
    "cf:uid",
    "cf:utime",
    "cf:uts_namspace",
    "cf:utsns",
    "cf:uuid",
    "cf:valid",
    "cf:value",
    "cf:version",
    "cf:vm",
    "cf:vpid",
    "cf:wbytes",
];

/// The `prov:` attribute names of W3C PROV-JSON elements (a relation's own endpoint keys are
/// not attributes, but another relation's may appear).
const PROV_ATTRIBUTES: &[&str] = &[
    "prov:label",
    "prov:type",
    "prov:activity",
    "prov:entity",
    "prov:agent",
    "prov:usedEntity",
    "prov:generatedEntity",
    "prov:informed",
    "prov:informant",
    "prov:influencer",
    "prov:influencee",
];

/// SPADE's annotation names that CamFlow's W3C output has no `cf:` twin of.
const SPADE_ATTRIBUTES: &[&str] = &["from_type", "to_type"];

static KNOWN: LazyLock<HashSet<&'static str, foldhash::fast::FixedState>> = LazyLock::new(|| {
    let bare = CAMFLOW_ATTRIBUTES
        .iter()
        .filter_map(|name| name.strip_prefix("cf:"));
    CAMFLOW_ATTRIBUTES
        .iter()
        .copied()
        .chain(bare)
        .chain(PROV_ATTRIBUTES.iter().copied())
        .chain(SPADE_ATTRIBUTES.iter().copied())
        .collect()
});

/// An attribute name as a decoded record keeps it: borrowed from the table when CamFlow
/// writes it, a copy otherwise.
///
/// ```
/// use std::borrow::Cow;
/// use provdb::decode::attribute_name;
/// assert!(matches!(attribute_name("cf:jiffies"), Cow::Borrowed("cf:jiffies")));
/// assert!(matches!(attribute_name("jiffies"), Cow::Borrowed("jiffies")));
/// assert!(matches!(attribute_name("cf:made_up"), Cow::Owned(n) if n == "cf:made_up"));
/// ```
pub fn attribute_name(name: &str) -> Name {
    match KNOWN.get(name) {
        Some(known) => Name::Borrowed(known),
        None => Name::Owned(name.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn every_listed_name_is_borrowed_with_its_own_text() {
        let listed = CAMFLOW_ATTRIBUTES
            .iter()
            .chain(PROV_ATTRIBUTES)
            .chain(SPADE_ATTRIBUTES);
        for name in listed {
            assert!(
                matches!(attribute_name(name), Cow::Borrowed(n) if n == *name),
                "{name}"
            );
            if let Some(bare) = name.strip_prefix("cf:") {
                assert!(
                    matches!(attribute_name(bare), Cow::Borrowed(n) if n == bare),
                    "{bare}"
                );
            }
        }
    }

    #[test]
    fn other_names_are_copied_as_they_are() {
        for name in ["", "cf:", "CF:ID", "cf:id ", "prov:", "x"] {
            assert!(
                matches!(attribute_name(name), Cow::Owned(ref n) if n == name),
                "{name:?}"
            );
        }
    }
}
