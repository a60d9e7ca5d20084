//! What detection knows of each vertex (version): its type, the names that rules read (path,
//! program, command line, uid, remote address) and SLEUTH-style tags, each with the causal
//! path that gave it. Facts are updated per edge in O(1) ([`propagate`]) and persisted in
//! [`crate::side_tables::DETECT_FACTS`], so a rule fires on the edge that completes its
//! pattern without a traversal.

use std::net::IpAddr;

use provdb_storage::{EdgeInput, ExternalId, Name, Value, VertexInput};

/// Longest causal path a tag keeps: the first steps (where the data came from) and the last
/// ones (how it got here), so a long-lived tag costs bounded bytes.
const MAX_STEPS: usize = 16;
/// Steps kept from the start of a path that is cut.
const HEAD_STEPS: usize = 6;
/// Longest path kept for how a process got its program (binary, image, task).
const MAX_EXE_STEPS: usize = 4;

/// A tag's kind. Trust tags: `Network` (data from an external endpoint reached this
/// vertex), `Downloaded` (an object written by a network-tainted process, and what runs its
/// code). Confidentiality: `Secret` (a secret file was read). Role: `Server` (a process that
/// accepted a connection, and its descendants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub(crate) enum TagKind {
    Network,
    Downloaded,
    Secret,
    Server,
}

impl TagKind {
    /// The value a rule compares with (`trust = 'network'`, `conf = 'secret'`).
    pub(crate) fn value(self) -> &'static str {
        match self {
            TagKind::Network => "network",
            TagKind::Downloaded => "downloaded",
            TagKind::Secret => "secret",
            TagKind::Server => "server",
        }
    }
}

/// One step of a causal path: a vertex, reached by an edge (none for the origin).
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub(crate) struct Step {
    pub(crate) vertex: String,
    pub(crate) vertex_type: String,
    pub(crate) name: Option<String>,
    /// `(edge id, edge type, sender id)` of the edge that reached the vertex.
    pub(crate) via: Option<(String, String, String)>,
}

/// A tag and the causal path that gave it, oldest step first.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub(crate) struct Tag {
    pub(crate) kind: TagKind,
    /// When the tag arose (Unix seconds of its first edge), for rule windows.
    pub(crate) since: Option<i64>,
    pub(crate) path: Vec<Step>,
}

/// What detection knows of one vertex.
#[derive(Debug, Clone, Default, PartialEq, bincode::Encode, bincode::Decode)]
pub(crate) struct Facts {
    /// CamFlow type (empty when only referenced so far).
    pub(crate) ty: String,
    pub(crate) machine: Option<u32>,
    pub(crate) boot: Option<u32>,
    /// Kernel object id: versions of one object share it (alerts are deduplicated by it).
    pub(crate) object: Option<u64>,
    /// Path name (files: from `named` path vertices; path vertices: their own).
    pub(crate) path: Option<String>,
    /// The program a process runs (path of the binary it executed).
    pub(crate) exe: Option<String>,
    /// How the process came to run it: the binary, the `exec` into a process image, and the
    /// hops to this vertex (at most [`MAX_EXE_STEPS`]).
    pub(crate) exe_path: Vec<Step>,
    /// Its command line (argv vertices: their value).
    pub(crate) argv: Option<String>,
    /// Process credentials (process memory: its own `cf:uid`; tasks: their memory's).
    pub(crate) uid: Option<i64>,
    /// Remote endpoint (`host:port`) of a socket, address or packet.
    pub(crate) remote: Option<String>,
    /// The remote endpoint is outside private, loopback and link-local networks.
    pub(crate) external: bool,
    /// An attribute change that truncates (iattr with the size bit and size 0).
    pub(crate) truncated: bool,
    /// The program of the server process a `Server` tag came from.
    pub(crate) server_exe: Option<String>,
    /// At most one tag of each kind.
    pub(crate) tags: Vec<Tag>,
}

impl Facts {
    pub(crate) fn tag(&self, kind: TagKind) -> Option<&Tag> {
        self.tags.iter().find(|t| t.kind == kind)
    }

    fn set_tag(&mut self, tag: Tag) {
        match self.tags.iter_mut().find(|t| t.kind == tag.kind) {
            // The older tag stays: it explains where the data first came from.
            Some(_) => {}
            None => self.tags.push(tag),
        }
    }

    /// The name shown for the vertex in a path: path, program, remote end or command line.
    pub(crate) fn display_name(&self) -> Option<String> {
        self.path
            .clone()
            .or_else(|| self.exe.clone())
            .or_else(|| self.remote.clone())
            .or_else(|| self.argv.clone())
    }

    /// Facts from a vertex's own definition (its attributes win over inherited ones).
    pub(crate) fn define(&mut self, v: &VertexInput) {
        self.ty = v.type_name.clone();
        self.machine = v.placement.machine.or(self.machine);
        self.boot = v.placement.boot.or(self.boot);
        self.object = v.placement.object_id.or(self.object);
        let attr = |key: &str| find_string_attr(&v.attrs, key);
        match v.type_name.as_str() {
            "path" => self.path = attr("cf:pathname").or(self.path.take()),
            "argv" => self.argv = attr("cf:value").or(self.argv.take()),
            "process_memory" => {
                if let Some(uid) = find_input_attr(&v.attrs, "cf:uid").and_then(Value::as_i64) {
                    self.uid = Some(uid);
                }
            }
            "address" => {
                if let Some(Value::Json(text) | Value::Str(text)) =
                    find_input_attr(&v.attrs, "cf:address")
                {
                    if let Some((host, port)) = address_host(text) {
                        let (host, port) = (bounded(host), bounded(port));
                        self.external = is_external(&host);
                        self.remote = Some(format!("{host}:{port}"));
                    }
                }
            }
            "packet" => {
                if let Some(sender) = attr("cf:sender") {
                    let host = sender.rsplit_once(':').map_or(sender.as_str(), |(h, _)| h);
                    self.external = is_external(host);
                    self.remote = Some(sender);
                }
            }
            "iattr" => {
                let valid = find_input_attr(&v.attrs, "cf:valid").and_then(hex_or_int);
                let size = find_input_attr(&v.attrs, "cf:size").and_then(hex_or_int);
                // ATTR_SIZE (0x8) with a size of 0: a truncation.
                self.truncated = valid.is_some_and(|v| v & 0x8 != 0) && size == Some(0);
            }
            _ => {}
        }
    }

    /// The step that names this vertex in a path.
    fn step(&self, id: &ExternalId, via: Option<(String, String, String)>) -> Step {
        Step {
            vertex: id.to_string(),
            vertex_type: self.ty.clone(),
            name: self.display_name(),
            via,
        }
    }
}

fn find_input_attr<'a>(attrs: &'a [(Name, Value)], key: &str) -> Option<&'a Value> {
    attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn find_string_attr(attrs: &[(Name, Value)], key: &str) -> Option<String> {
    find_input_attr(attrs, key).map(|v| bounded(v.to_string()))
}

/// Longest name (path, command line, address) facts keep: input comes from machines that
/// may be compromised, and facts are copied along edges.
const MAX_NAME_BYTES: usize = 4096;

/// A name cut to [`MAX_NAME_BYTES`] (at a character boundary).
fn bounded(mut s: String) -> String {
    if s.len() > MAX_NAME_BYTES {
        let mut end = MAX_NAME_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// CamFlow prints some integers in hex (`"0x8"`), others in decimal.
fn hex_or_int(v: &Value) -> Option<i64> {
    match v {
        Value::Str(s) => match s.strip_prefix("0x") {
            Some(hex) => i64::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        },
        other => other.as_i64(),
    }
}

/// `{"type":"AF_INET","host":"1.2.3.4","service":"80"}` (libprovenance's `cf:address`):
/// host and service (or port).
fn address_host(text: &str) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let host = value.get("host")?.as_str()?.to_owned();
    let port = ["service", "serv", "port"]
        .iter()
        .find_map(|k| value.get(*k))
        .map(|p| match p {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default();
    Some((host, port))
}

/// True for an IP address outside private, loopback, link-local and unspecified ranges
/// (documentation ranges count as external: they stand for the internet in simulations).
pub(crate) fn is_external(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            let o = a.octets();
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        Ok(IpAddr::V6(a)) => {
            let s = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
        Err(_) => false,
    }
}

/// How an edge type moves facts from sender to receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// A new version of the same object: everything carries over.
    Version,
    /// A path names an object.
    Named,
    /// A process forks: the child runs the same program, with the same credentials.
    Clone,
    /// A process starts a new program image (task -> new process memory).
    ExecTask,
    /// A binary is loaded into a process image.
    Exec,
    /// A command line reaches a process image.
    Arg,
    /// A process image runs in a task (the task takes its program and credentials).
    MemoryRead,
    /// A connection is accepted (socket -> task): the task is a server.
    Accept,
    /// Data enters a socket from the network (packet, address or listener).
    Inbound,
    /// Data flows from an object to a process (read, receive, ...).
    Read,
    /// Data flows from a process to an object (write, send, create, ...).
    Write,
    /// An attribute change reaches its inode.
    SetattrInode,
    /// Nothing that a rule reads.
    Other,
}

fn flow_of(edge_type: &str, src_ty: &str, dst_ty: &str) -> Flow {
    match edge_type {
        "version_entity" | "version_activity" | "version" => Flow::Version,
        "named" => Flow::Named,
        "clone" => Flow::Clone,
        "exec_task" => Flow::ExecTask,
        "exec" => Flow::Exec,
        "arg" => Flow::Arg,
        "memory_read" => Flow::MemoryRead,
        "accept" => Flow::Accept,
        "receive_packet" | "addressed" | "accept_socket" => Flow::Inbound,
        "setattr_inode" => Flow::SetattrInode,
        _ => {
            let is_process = |t: &str| t == "task";
            if is_process(dst_ty) && !is_process(src_ty) {
                Flow::Read
            } else if is_process(src_ty) && !is_process(dst_ty) {
                Flow::Write
            } else {
                Flow::Other
            }
        }
    }
}

/// What one edge changes in its receiver's facts, given the sender's facts before it. The
/// sender is never changed (information flows one way). Returns whether the receiver's facts
/// changed: most edges (reads and writes without tags) change nothing, and facts that did
/// not change need not be written again.
pub(crate) fn propagate(
    edge: &EdgeInput,
    src: &Facts,
    dst: &mut Facts,
    secret: &dyn Fn(&str) -> bool,
) -> bool {
    let flow = flow_of(&edge.type_name, &src.ty, &dst.ty);
    // These flows overwrite values in place; the others only fill what is missing, set
    // flags and add tags, which the shape of the facts shows.
    let overwrites = match flow {
        Flow::Exec | Flow::Arg | Flow::MemoryRead => true,
        Flow::Write => dst.ty == "iattr",
        _ => false,
    };
    let before = (!overwrites).then(|| Shape::of(dst));
    apply(flow, edge, src, dst, secret);
    before.is_none_or(|b| b != Shape::of(dst))
}

/// What [`propagate`]'s filling flows can change: which values are present, flags, tags.
#[derive(PartialEq)]
struct Shape {
    ty_len: usize,
    present: [bool; 7],
    uid: Option<i64>,
    object: Option<u64>,
    flags: [bool; 2],
    tags: usize,
    exe_steps: usize,
}

impl Shape {
    fn of(f: &Facts) -> Shape {
        Shape {
            ty_len: f.ty.len(),
            present: [
                f.path.is_some(),
                f.exe.is_some(),
                f.argv.is_some(),
                f.remote.is_some(),
                f.server_exe.is_some(),
                f.machine.is_some(),
                f.boot.is_some(),
            ],
            uid: f.uid,
            object: f.object,
            flags: [f.external, f.truncated],
            tags: f.tags.len(),
            exe_steps: f.exe_path.len(),
        }
    }
}

fn apply(
    flow: Flow,
    edge: &EdgeInput,
    src: &Facts,
    dst: &mut Facts,
    secret: &dyn Fn(&str) -> bool,
) {
    // The edge as a path step's `via`, made only when a step is recorded (most edges carry
    // no tag: their ids are not turned into text).
    let via = || {
        Some((
            edge.ext_id.to_string(),
            edge.type_name.clone(),
            edge.src.ext_id.to_string(),
        ))
    };
    let time = edge.placement.time;
    // A tag of the sender, extended by this edge to the receiver.
    let extend = |tag: &Tag, dst: &Facts| -> Tag {
        let mut path = tag.path.clone();
        path.push(dst.step(&edge.dst.ext_id, via()));
        if path.len() > MAX_STEPS {
            path.drain(HEAD_STEPS..path.len() - (MAX_STEPS - HEAD_STEPS));
        }
        Tag {
            kind: tag.kind,
            since: tag.since.or(time),
            path,
        }
    };
    // A new tag that starts at the sender and reaches the receiver by this edge.
    let start = |kind: TagKind, dst: &Facts| -> Tag {
        Tag {
            kind,
            since: time,
            path: vec![
                src.step(&edge.src.ext_id, None),
                dst.step(&edge.dst.ext_id, via()),
            ],
        }
    };
    // The sender's program path, extended to the receiver (when the receiver takes the
    // sender's program).
    let exe_path = |dst: &Facts| -> Vec<Step> {
        if src.exe_path.is_empty() {
            return Vec::new();
        }
        let mut path = src.exe_path.clone();
        path.push(dst.step(&edge.dst.ext_id, via()));
        if path.len() > MAX_EXE_STEPS {
            path.drain(2..path.len() - (MAX_EXE_STEPS - 2));
        }
        path
    };
    let inherit = |dst: &mut Facts, kinds: &[TagKind]| {
        for tag in &src.tags {
            if kinds.contains(&tag.kind) && dst.tag(tag.kind).is_none() {
                let t = extend(tag, dst);
                dst.set_tag(t);
            }
        }
    };
    // What the receiver does not know of its program (binary, argv, uid, the server it
    // serves), it takes from the sender: a new version, a child or a new task runs on as
    // its parent did.
    let take_program = |dst: &mut Facts| {
        if dst.exe.is_none() && src.exe.is_some() {
            dst.exe_path = exe_path(dst);
        }
        dst.exe = dst.exe.take().or_else(|| src.exe.clone());
        dst.argv = dst.argv.take().or_else(|| src.argv.clone());
        dst.uid = dst.uid.or(src.uid);
        dst.server_exe = dst.server_exe.take().or_else(|| src.server_exe.clone());
    };
    const ALL: [TagKind; 4] = [
        TagKind::Network,
        TagKind::Downloaded,
        TagKind::Secret,
        TagKind::Server,
    ];
    match flow {
        Flow::Version => {
            // The new version's own attributes (defined before) win.
            if dst.ty.is_empty() {
                dst.ty = src.ty.clone();
            }
            dst.path = dst.path.take().or_else(|| src.path.clone());
            take_program(dst);
            dst.remote = dst.remote.take().or_else(|| src.remote.clone());
            dst.external |= src.external;
            dst.object = dst.object.or(src.object);
            inherit(dst, &ALL);
        }
        Flow::Named => {
            if dst.path.is_none() {
                dst.path = src.path.clone();
            }
        }
        Flow::Clone | Flow::ExecTask => {
            take_program(dst);
            inherit(dst, &ALL);
        }
        Flow::Exec => {
            if src.path.is_some() {
                dst.exe_path = vec![
                    src.step(&edge.src.ext_id, None),
                    dst.step(&edge.dst.ext_id, via()),
                ];
            }
            dst.exe = src.path.clone().or(dst.exe.take());
            inherit(dst, &[TagKind::Downloaded]);
        }
        Flow::Arg => dst.argv = src.argv.clone(),
        Flow::MemoryRead => {
            if src.exe.is_some() {
                dst.exe_path = exe_path(dst);
            }
            dst.exe = src.exe.clone().or(dst.exe.take());
            dst.argv = src.argv.clone().or(dst.argv.take());
            dst.uid = src.uid.or(dst.uid);
            dst.server_exe = src.server_exe.clone().or(dst.server_exe.take());
            inherit(dst, &ALL);
        }
        Flow::Accept => {
            if dst.tag(TagKind::Server).is_none() {
                let tag = start(TagKind::Server, dst);
                dst.set_tag(tag);
                dst.server_exe = dst.exe.clone();
            }
            inherit(dst, &[TagKind::Network]);
        }
        Flow::Inbound => {
            if src.external {
                dst.external = true;
                dst.remote = dst.remote.take().or_else(|| src.remote.clone());
                if dst.tag(TagKind::Network).is_none() {
                    let tag = match src.tag(TagKind::Network) {
                        Some(t) => extend(t, dst),
                        None => start(TagKind::Network, dst),
                    };
                    dst.set_tag(tag);
                }
            }
            inherit(dst, &[TagKind::Network]);
        }
        Flow::Read => {
            if src.path.as_deref().is_some_and(secret) && dst.tag(TagKind::Secret).is_none() {
                let tag = start(TagKind::Secret, dst);
                dst.set_tag(tag);
            }
            inherit(dst, &[TagKind::Network, TagKind::Secret]);
        }
        Flow::Write => {
            if dst.ty == "iattr" {
                dst.exe_path = exe_path(dst);
                dst.exe = src.exe.clone();
                dst.uid = src.uid;
            }
            // What a network-tainted process writes is downloaded data (sockets excepted:
            // sending is not receiving).
            if dst.ty != "socket" && dst.tag(TagKind::Downloaded).is_none() {
                let from = src
                    .tag(TagKind::Downloaded)
                    .or_else(|| src.tag(TagKind::Network));
                if let Some(t) = from {
                    let mut tag = extend(t, dst);
                    tag.kind = TagKind::Downloaded;
                    dst.set_tag(tag);
                }
            }
            if dst.ty != "socket" {
                inherit(dst, &[TagKind::Secret]);
            }
        }
        Flow::SetattrInode => {
            dst.truncated |= src.truncated;
        }
        Flow::Other => {}
    }
}

/// Encodes facts for their side table.
pub(crate) fn encode(facts: &Facts) -> Vec<u8> {
    // Encoding a plain struct into a Vec cannot fail.
    bincode::encode_to_vec(facts, bincode::config::standard()).unwrap_or_default()
}

/// Decodes facts read back from their side table; `None` for bytes that are not facts
/// (a damaged table loses detection state for one vertex, never stops ingest).
pub(crate) fn decode(bytes: &[u8]) -> Option<Facts> {
    let config = bincode::config::standard().with_limit::<{ 1 << 20 }>();
    bincode::decode_from_slice(bytes, config)
        .ok()
        .map(|(f, _)| f)
}

/// The key of a vertex's facts: its external id's text.
pub(crate) fn key(id: &ExternalId) -> Vec<u8> {
    id.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_addresses_are_public_ones() {
        for (host, external) in [
            ("10.0.2.15", false),
            ("192.168.1.4", false),
            ("172.20.0.1", false),
            ("127.0.0.1", false),
            ("169.254.1.1", false),
            ("100.64.0.1", false),
            ("0.0.0.0", false),
            ("203.0.113.45", true),
            ("8.8.8.8", true),
            ("::1", false),
            ("fe80::1", false),
            ("fd00::1", false),
            ("2001:db8::1", true),
            ("/run/systemd/journal", false),
            ("", false),
        ] {
            assert_eq!(is_external(host), external, "{host}");
        }
    }

    #[test]
    fn facts_round_trip_and_garbage_is_none() {
        let mut f = Facts {
            ty: "task".into(),
            exe: Some("/usr/bin/curl".into()),
            uid: Some(1000),
            ..Default::default()
        };
        f.tags.push(Tag {
            kind: TagKind::Secret,
            since: Some(5),
            path: vec![Step {
                vertex: "v".into(),
                vertex_type: "file".into(),
                name: Some("/etc/shadow".into()),
                via: None,
            }],
        });
        assert_eq!(decode(&encode(&f)), Some(f));
        assert_eq!(decode(&[0xff; 7]), None);
    }

    fn endpoint(id: &str) -> provdb_storage::EndpointInput {
        provdb_storage::EndpointInput {
            ext_id: ExternalId::parse(id),
            type_hint: None,
        }
    }

    fn facts_strategy() -> impl proptest::strategy::Strategy<Value = Facts> {
        use proptest::prelude::*;
        let text =
            || proptest::option::of(prop_oneof![Just("/etc/shadow".to_owned()), "[a-z/]{1,8}"]);
        let tag = (0..4usize, proptest::option::of(0..100i64)).prop_map(|(k, since)| Tag {
            kind: [
                TagKind::Network,
                TagKind::Downloaded,
                TagKind::Secret,
                TagKind::Server,
            ][k],
            since,
            path: Vec::new(),
        });
        (
            prop_oneof![
                Just(""),
                Just("task"),
                Just("file"),
                Just("iattr"),
                Just("socket"),
                Just("packet")
            ],
            (text(), text(), text(), text(), text()),
            (proptest::option::of(0..3i64), proptest::option::of(0..3u64)),
            (any::<bool>(), any::<bool>()),
            proptest::collection::vec(tag, 0..3),
        )
            .prop_map(
                |(
                    ty,
                    (path, exe, argv, remote, server_exe),
                    (uid, object),
                    (external, truncated),
                    tags,
                )| {
                    let mut f = Facts {
                        ty: ty.to_owned(),
                        path,
                        exe,
                        argv,
                        remote,
                        server_exe,
                        uid,
                        object,
                        external,
                        truncated,
                        ..Facts::default()
                    };
                    for t in tags {
                        f.set_tag(t);
                    }
                    f
                },
            )
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(2048))]
        /// Facts that `propagate` says did not change are not written again: the claim must
        /// hold for every edge type and every state of the two ends.
        #[test]
        fn propagate_never_hides_a_change(
            src in facts_strategy(),
            dst in facts_strategy(),
            edge_type in proptest::sample::select(vec![
                "version_entity", "version_activity", "named", "clone", "exec_task", "exec",
                "arg", "memory_read", "accept", "receive_packet", "addressed", "setattr_inode",
                "read", "write", "send", "open",
            ]),
        ) {
            let edge = EdgeInput {
                ext_id: ExternalId::parse("e"),
                type_name: edge_type.to_owned(),
                relation: provdb_storage::ProvRelation::Used,
                src: endpoint("s"),
                dst: endpoint("d"),
                placement: provdb_storage::Placement { time: Some(50), ..Default::default() },
                attrs: Vec::new(),
            };
            let mut after = dst.clone();
            let changed = propagate(&edge, &src, &mut after, &|p: &str| p == "/etc/shadow");
            proptest::prop_assert!(changed || after == dst, "{edge_type}: {dst:?} -> {after:?}");
        }
    }
}
