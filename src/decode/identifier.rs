//! The kernel's 32-byte identifiers (CamFlow `union prov_identifier`, x86_64 layout,
//! little-endian), decoded so machine, boot and version never depend on attributes.

use std::net::Ipv4Addr;

use provdb_storage::ExternalId;

/// A decoded node or relation identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeIdentifier {
    /// Type bits (meaning changed between kernel versions: names come from `prov:type`).
    pub type_bits: u64,
    /// Kernel object or relation id.
    pub id: u64,
    /// Boot id.
    pub boot: u32,
    /// Machine id.
    pub machine: u32,
    /// Version (nodes; zero for relations).
    pub version: u32,
}

/// A decoded packet identifier (aligned layout; network-order fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketIdentifier {
    /// Type bits.
    pub type_bits: u64,
    /// IP id as it is on the wire.
    pub ip_id: u16,
    /// Sender address.
    pub sender: Ipv4Addr,
    /// Receiver address.
    pub receiver: Ipv4Addr,
    /// Sender port.
    pub sender_port: u16,
    /// Receiver port.
    pub receiver_port: u16,
    /// IP protocol number.
    pub protocol: u8,
    /// TCP sequence number.
    pub seq: u32,
}

fn le_u64(b: &[u8; 32], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn le_u32(b: &[u8; 32], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

impl NodeIdentifier {
    /// Decodes a node or relation identifier; `None` for ids that are not 32 bytes.
    ///
    /// ```
    /// use provdb::decode::identifier::NodeIdentifier;
    /// use provdb_storage::ExternalId;
    /// let id = ExternalId::parse("AQAAAAAAAEBWpAEAAAAAAP2S3vK12+s85QAAAAAAAAA=");
    /// let n = NodeIdentifier::decode(&id).unwrap();
    /// assert_eq!((n.type_bits, n.id, n.boot, n.machine, n.version),
    ///            (0x4000000000000001, 107606, 4074672893, 1022090165, 229));
    /// ```
    pub fn decode(ext: &ExternalId) -> Option<NodeIdentifier> {
        let b = ext.bytes()?;
        Some(NodeIdentifier {
            type_bits: le_u64(b, 0),
            id: le_u64(b, 8),
            boot: le_u32(b, 16),
            machine: le_u32(b, 20),
            version: le_u32(b, 24),
        })
    }
}

impl PacketIdentifier {
    /// Decodes a packet identifier.
    ///
    /// ```
    /// use provdb::decode::identifier::PacketIdentifier;
    /// use provdb_storage::ExternalId;
    /// let id = ExternalId::parse("AAAQAAAAACAnWAAACgACD8CoIQqFggBQBgAAAMdkGOQ=");
    /// let p = PacketIdentifier::decode(&id).unwrap();
    /// assert_eq!(p.sender.to_string(), "10.0.2.15");
    /// assert_eq!(p.receiver.to_string(), "192.168.33.10");
    /// assert_eq!((p.sender_port, p.receiver_port, p.protocol), (34178, 80, 6));
    /// ```
    pub fn decode(ext: &ExternalId) -> Option<PacketIdentifier> {
        let b = ext.bytes()?;
        Some(PacketIdentifier {
            type_bits: le_u64(b, 0),
            ip_id: u16::from_be_bytes([b[8], b[9]]),
            sender: Ipv4Addr::new(b[12], b[13], b[14], b[15]),
            receiver: Ipv4Addr::new(b[16], b[17], b[18], b[19]),
            sender_port: u16::from_be_bytes([b[20], b[21]]),
            receiver_port: u16::from_be_bytes([b[22], b[23]]),
            protocol: b[24],
            seq: u32::from_be_bytes([b[28], b[29], b[30], b[31]]),
        })
    }
}
