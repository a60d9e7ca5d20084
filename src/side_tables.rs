//! The side tables provdb keeps in an archive beside the graph ([`SideTable`]: named tables
//! the storage engine writes atomically with a batch but does not interpret). A writer
//! declares them all at open, so that they exist; readers open those the archive has.

use provdb_storage::SideTable;

/// Machine registry of the ingest service: machine id (4 bytes, big-endian) -> record.
pub const MACHINES: SideTable = SideTable::new("machines");
/// Quarantined messages of the ingest service: key (hash of topic and payload) -> record.
pub const QUARANTINE: SideTable = SideTable::new("quarantine");
/// Small durable state of the ingest service (MQTT sessions, poison-message strikes).
pub const SERVICE_STATE: SideTable = SideTable::new("service_state");

/// Detection's facts per vertex (external id text -> facts: type, names, tags with their
/// causal paths); see `detect`.
pub const DETECT_FACTS: SideTable = SideTable::new("detect_facts");
/// Alerts, their deduplication keys and the next alert id; see `detect::Alert`.
pub const ALERTS: SideTable = SideTable::new("alerts");

/// Anomaly detection's models, versioned per machine or fleet; see `anomaly::archive`.
pub const ANOMALY_MODELS: SideTable = SideTable::new("anomaly_models");

/// Every side table of provdb.
pub(crate) const ALL: [SideTable; 6] = [
    MACHINES,
    QUARANTINE,
    SERVICE_STATE,
    DETECT_FACTS,
    ALERTS,
    ANOMALY_MODELS,
];

/// Key of a machine's row in [`MACHINES`]: its id, big-endian. Defined here, not in the
/// ingest service, because pruning a machine deletes its row even in a build without the
/// service.
pub(crate) fn machine_registry_key(machine: u32) -> [u8; 4] {
    machine.to_be_bytes()
}
