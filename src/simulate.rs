//! Synthetic CamFlow fleets: format-faithful W3C PROV-JSON documents in the current CamFlow
//! shape (libprovenance v0.5.x: `cf:`-prefixed 32-byte identifiers, `"cf:machine_id":"cf:N"`,
//! u64 attributes as quoted decimals, `cf:date` with colons, a machine agent, versioned
//! entities), deterministic from a seed. Documents are capped like camflowd's 8 KiB section
//! buffers, so sizes match real output (a few KiB to ~30 KiB).
//!
//! ```
//! use provdb::simulate::{Simulation, SimulationOptions};
//! let opts = SimulationOptions { seed: 7, machines: 2, documents_per_machine: 3, ..Default::default() };
//! let docs: Vec<_> = Simulation::new(&opts).collect();
//! assert_eq!(docs.len(), 6);
//! let batch = provdb::decode::decode_text(docs[0].json.clone().into_bytes())?;
//! assert!(batch.len() > 10);
//! assert!(batch.vertices.iter().all(|v| v.placement.machine.is_none_or(|m| m == docs[0].machine)));
//! // Deterministic.
//! let again: Vec<_> = Simulation::new(&opts).collect();
//! assert_eq!(docs, again);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use base64::Engine as _;
use std::fmt::Write as _;

pub mod scenarios;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulationOptions {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of machines.
    pub machines: u32,
    /// Documents (MQTT messages) per machine.
    pub documents_per_machine: u64,
    /// Target records per document (the 8 KiB section cap may end a document earlier).
    pub records_per_document: usize,
}

impl Default for SimulationOptions {
    fn default() -> Self {
        SimulationOptions {
            seed: 1,
            machines: 1,
            documents_per_machine: 10,
            records_per_document: 40,
        }
    }
}

/// One generated document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDocument {
    /// Machine id (also in the topic).
    pub machine: u32,
    /// W3C PROV-JSON text (one line).
    pub json: String,
    /// Records (vertices + relations) in it.
    pub records: usize,
}

/// SplitMix64: small, fast, deterministic.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const DM_RELATION: u64 = 0x8000_0000_0000_0000;
const DM_ACTIVITY: u64 = 0x4000_0000_0000_0000;
const DM_ENTITY: u64 = 0x2000_0000_0000_0000;
const DM_AGENT: u64 = 0x1000_0000_0000_0000;

const FILES: &[&str] = &[
    "/etc/ld.so.cache",
    "/usr/lib64/libc.so.6",
    "/etc/passwd",
    "/etc/hosts",
    "/tmp/build.log",
    "/var/log/messages",
    "/home/user/notes.txt",
    "/usr/bin/bash",
    "/etc/resolv.conf",
    "/var/lib/rpm/Packages",
    "/usr/lib64/libpthread.so.0",
    "/proc/meminfo",
    "/dev/null",
];
/// Benign background: (program, command line) of what a machine does on its own (shells,
/// package updates, cron jobs, compilers, ssh logins), none of it an attack pattern of
/// `scenarios`: the detection rules must stay silent on it.
const PROGRAMS: &[(&str, &str)] = &[
    ("/usr/bin/bash", "-bash"),
    (
        "/usr/bin/wget",
        "wget -q https://mirror.example.org/fedora/SHA256SUMS",
    ),
    (
        "/usr/sbin/crond",
        "/usr/sbin/CROND -n run-parts /etc/cron.hourly",
    ),
    ("/usr/bin/cat", "cat /etc/hosts"),
    ("/usr/sbin/sshd", "sshd: user [priv]"),
    (
        "/usr/bin/python3",
        "/usr/bin/python3 /usr/bin/dnf -y upgrade",
    ),
    ("/usr/bin/gcc", "gcc -O2 -c main.c -o main.o"),
    ("/usr/bin/make", "make -j2"),
];
/// The FILES that background programs write; the others (system files, binaries, logs) are
/// only read, since a write to them is what the attack scenarios' rules look for.
const BENIGN_WRITABLE: &[&str] = &[
    "/tmp/build.log",
    "/home/user/notes.txt",
    "/var/lib/rpm/Packages",
    "/dev/null",
];
const READS: &[&str] = &[
    "read",
    "open",
    "getattr",
    "mmap",
    "perm_check",
    "search",
    "read_link",
];
const WRITES: &[&str] = &[
    "write",
    "setattr",
    "inode_create",
    "memory_write",
    "file_lock",
];

/// State of one simulated machine.
#[derive(Debug, Clone)]
struct Machine {
    id: u32,
    boot: u32,
    next_node: u64,
    next_rel: u64,
    jiffies: u64,
    time: i64,
    docs: u64,
    /// (node id, version) of long-lived files, indexed like FILES.
    files: Vec<(u64, u32)>,
    agent: [u8; 32],
}

/// An iterator over the documents of a simulated fleet, machine after machine interleaved
/// (document 1 of every machine, then document 2, ...).
#[derive(Debug, Clone)]
pub struct Simulation {
    rng: Rng,
    machines: Vec<Machine>,
    per_machine: u64,
    records: usize,
    round: u64,
    index: usize,
}

fn ident(type_bits: u64, id: u64, boot: u32, machine: u32, version: u32) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0..8].copy_from_slice(&type_bits.to_le_bytes());
    b[8..16].copy_from_slice(&id.to_le_bytes());
    b[16..20].copy_from_slice(&boot.to_le_bytes());
    b[20..24].copy_from_slice(&machine.to_le_bytes());
    b[24..28].copy_from_slice(&version.to_le_bytes());
    b
}

fn enc(id: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(id)
}

/// `cf:date` text: `YYYY:MM:DDThh:mm:ss` (UTC).
fn cf_date(t: i64) -> String {
    let t = provdb_storage::UtcDateTime::from_unix(t);
    format!(
        "{:04}:{:02}:{:02}T{:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// Sections of one document under construction, capped like libprovenance's buffers.
struct Doc {
    sections: [(&'static str, String); 8],
    records: usize,
}

const SECTION_CAP: usize = 8191;

impl Doc {
    fn new() -> Doc {
        Doc {
            sections: [
                ("agent", String::new()),
                ("activity", String::new()),
                ("entity", String::new()),
                ("used", String::new()),
                ("wasGeneratedBy", String::new()),
                ("wasInformedBy", String::new()),
                // Only the attack scenarios write it (load_module); empty sections are omitted.
                ("wasInfluencedBy", String::new()),
                ("wasDerivedFrom", String::new()),
            ],
            records: 0,
        }
    }
    /// Adds an element unless its section would overflow; false when full.
    fn add(&mut self, section: &str, key: &str, body: &str) -> bool {
        let Some((_, buf)) = self.sections.iter_mut().find(|(n, _)| *n == section) else {
            return false;
        };
        let extra = key.len() + body.len() + 8;
        if buf.len() + extra > SECTION_CAP {
            return false;
        }
        if !buf.is_empty() {
            buf.push(',');
        }
        let _ = write!(buf, "\"cf:{key}\":{{{body}}}");
        self.records += 1;
        true
    }
    fn finish(self) -> String {
        let mut out = String::from(
            r#"{"prefix":{"prov" : "http://www.w3.org/ns/prov", "cf":"http://www.camflow.org"}"#,
        );
        for (name, buf) in &self.sections {
            if !buf.is_empty() {
                let _ = write!(out, ", \"{name}\":{{{buf}}}");
            }
        }
        out.push('}');
        out
    }
}

impl Simulation {
    /// A simulation of `options.machines` machines.
    pub fn new(options: &SimulationOptions) -> Simulation {
        let mut rng = Rng(options.seed ^ 0x5EED_CAF3_F10E_0001);
        let mut used = std::collections::HashSet::new();
        let machines = (0..options.machines)
            .map(|_| {
                let mut id = (rng.next() >> 32) as u32;
                while id == 0 || !used.insert(id) {
                    id = (rng.next() >> 32) as u32;
                }
                let boot = 1 + rng.below(3) as u32;
                let agent = ident(DM_AGENT | 0x20, rng.next() >> 8, boot, id, 1);
                Machine {
                    id,
                    boot,
                    next_node: 1000 + rng.below(100_000),
                    next_rel: 1 + rng.below(1000),
                    jiffies: 4_295_000_000 + rng.below(1_000_000),
                    time: 1_690_000_000 + rng.below(10_000_000) as i64,
                    docs: 0,
                    files: Vec::new(),
                    agent,
                }
            })
            .collect();
        Simulation {
            rng,
            machines,
            per_machine: options.documents_per_machine,
            records: options.records_per_document.max(4),
            round: 0,
            index: 0,
        }
    }

    /// Machine ids of the fleet.
    pub fn machine_ids(&self) -> Vec<u32> {
        self.machines.iter().map(|m| m.id).collect()
    }

    fn document(&mut self, mi: usize) -> SimDocument {
        let target = self.records;
        let rng = &mut self.rng;
        let m = &mut self.machines[mi];
        m.docs += 1;
        m.time += 1;
        m.jiffies += 250 + rng.below(1000);
        let date = cf_date(m.time);
        let mut doc = Doc::new();
        let common = |m: &Machine, id: u64, ty: &str, version: u32, epoch: u32| {
            format!(
                "\"cf:id\":\"{id}\",\"prov:type\":\"{ty}\",\"cf:boot_id\":{},\"cf:machine_id\":\"cf:{}\",\"cf:version\":{version},\"cf:date\":\"{date}\",\"cf:taint\":\"0\",\"cf:jiffies\":\"{}\",\"cf:epoch\":{epoch}",
                m.boot, m.id, m.jiffies
            )
        };
        let epoch = 1 + (m.docs / 50) as u32;
        if m.docs == 1 {
            let body = format!(
                "{},\"cf:u_sysname\":\"Linux\",\"cf:u_nodename\":\"node-{}.example\",\"cf:u_release\":\"5.15.104camflow0.8.0\",\"cf:u_version\":\"#1 SMP PREEMPT\",\"cf:u_machine\":\"x86_64\",\"cf:u_domainname\":\"(none)\",\"cf:k_version\":\"0.8.0\",\"cf:k_commit\":\"08615333\",\"cf:l_version\":\"v0.5.5\",\"cf:l_commit\":\"46255580\"",
                common(m, 5381, "machine", 1, epoch),
                m.id
            );
            doc.add("agent", &enc(&m.agent), &body);
        }
        let rel = |m: &mut Machine,
                   doc: &mut Doc,
                   section: &str,
                   ty: &str,
                   keys: (&str, &str),
                   from: &str,
                   to: &str,
                   rng: &mut Rng|
         -> bool {
            m.next_rel += 1;
            let id = ident(DM_RELATION | 0x40, m.next_rel, m.boot, m.id, 0);
            let mut body = format!(
                "\"cf:id\":\"{}\",\"prov:type\":\"{ty}\",\"cf:boot_id\":{},\"cf:machine_id\":\"cf:{}\",\"cf:date\":\"{date}\",\"cf:jiffies\":\"{}\",\"cf:epoch\":{epoch},\"prov:label\":\"{ty}\",\"cf:allowed\":\"true\",\"{}\":\"cf:{from}\",\"{}\":\"cf:{to}\"",
                m.next_rel, m.boot, m.id, m.jiffies, keys.0, keys.1
            );
            if ty == "read" || ty == "write" {
                let _ = write!(body, ",\"cf:offset\":\"{}\"", rng.below(1 << 20));
            }
            let _ = write!(
                body,
                ",\"cf:flags\":\"{:x}\",\"cf:task_id\":\"{}\"",
                rng.below(16),
                m.next_node
            );
            doc.add(section, &enc(&id), &body)
        };
        // A task, its process memory, its program and some files.
        while doc.records + 6 < target {
            m.next_node += 1;
            let pid = 1000 + rng.below(30_000);
            let task_id = m.next_node;
            let task = ident(DM_ACTIVITY | 1, task_id, m.boot, m.id, 0);
            let task_v1 = ident(DM_ACTIVITY | 1, task_id, m.boot, m.id, 1);
            let task_body = |m: &Machine, version: u32, rng: &mut Rng| {
                format!(
                    "{},\"cf:pid\":{pid},\"cf:vpid\":{pid},\"cf:utime\":\"{}\",\"cf:stime\":\"{}\",\"cf:vm\":\"{}\",\"cf:rss\":\"{}\",\"cf:hw_vm\":\"0\",\"cf:hw_rss\":\"0\",\"cf:rbytes\":\"{}\",\"cf:wbytes\":\"{}\",\"cf:cancel_wbytes\":\"0\",\"cf:utsns\":4026531838,\"cf:ipcns\":4026531839,\"cf:mntns\":4026531840,\"cf:pidns\":4026531836,\"cf:netns\":4026531992,\"cf:cgroupns\":4026531835,\"prov:label\":\"[task] {version}\"",
                    common(m, task_id, "task", version, epoch),
                    rng.below(100_000),
                    rng.below(100_000),
                    rng.below(1 << 30),
                    rng.below(1 << 24),
                    rng.below(1 << 20),
                    rng.below(1 << 20)
                )
            };
            let b0 = task_body(m, 0, rng);
            let b1 = task_body(m, 1, rng);
            if !doc.add("activity", &enc(&task), &b0) || !doc.add("activity", &enc(&task_v1), &b1) {
                break;
            }
            let task_s = enc(&task);
            let task1_s = enc(&task_v1);
            rel(
                m,
                &mut doc,
                "wasInformedBy",
                "version_activity",
                ("prov:informant", "prov:informed"),
                &task_s,
                &task1_s,
                rng,
            );
            m.next_node += 1;
            let mem_id = m.next_node;
            let mem = ident(DM_ENTITY | 0x0800_0000, mem_id, m.boot, m.id, 0);
            let mem_body = format!(
                "{},\"cf:uid\":1000,\"cf:gid\":1000,\"cf:tgid\":{pid},\"cf:secctx\":\"unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023\",\"prov:label\":\"[process] 0\"",
                common(m, mem_id, "process_memory", 0, epoch)
            );
            doc.add("entity", &enc(&mem), &mem_body);
            let mem_s = enc(&mem);
            rel(
                m,
                &mut doc,
                "used",
                "memory_read",
                ("prov:entity", "prov:activity"),
                &mem_s,
                &task1_s,
                rng,
            );
            // argv of the program.
            m.next_node += 1;
            let argv = ident(DM_ENTITY | 0x0010_0000, m.next_node, m.boot, m.id, 0);
            let (_, command) = *rng.pick(PROGRAMS);
            let argv_body = format!(
                "{},\"cf:value\":\"{command}\",\"cf:truncated\":\"false\",\"prov:label\":\"[argv] {command}\"",
                common(m, m.next_node, "argv", 0, epoch),
            );
            doc.add("entity", &enc(&argv), &argv_body);
            let argv_s = enc(&argv);
            rel(
                m,
                &mut doc,
                "wasDerivedFrom",
                "arg",
                ("prov:usedEntity", "prov:generatedEntity"),
                &argv_s,
                &mem_s,
                rng,
            );
            if m.docs == 1 && doc.records < 12 {
                let agent_s = enc(&m.agent);
                rel(
                    m,
                    &mut doc,
                    "wasAssociatedWith",
                    "ran_on",
                    ("prov:agent", "prov:activity"),
                    &agent_s,
                    &task1_s,
                    rng,
                );
            }
            // File activity.
            let ops = 2 + rng.below(5);
            for _ in 0..ops {
                if m.files.len() < FILES.len() {
                    m.next_node += 1;
                    m.files.push((m.next_node, 0));
                }
                let fi = rng.below(m.files.len() as u64) as usize;
                let (fid, version) = m.files[fi];
                let file = ident(DM_ENTITY | 0x0200, fid, m.boot, m.id, version);
                let ino = 100_000 + fid % 1_000_000;
                let file_body = format!(
                    "{},\"cf:uid\":0,\"cf:gid\":0,\"cf:mode\":\"0x81a4\",\"cf:secctx\":\"system_u:object_r:etc_t:s0\",\"cf:ino\":{ino},\"cf:uuid\":\"{:08x}-{:04x}-4a5b-9c8d-{:012x}\",\"prov:label\":\"[file] {version}\"",
                    common(m, fid, "file", version, epoch),
                    m.id,
                    m.boot & 0xffff,
                    u64::from(m.id) * 7919
                );
                if !doc.add("entity", &enc(&file), &file_body) {
                    break;
                }
                let file_s = enc(&file);
                if rng.below(3) == 0 && BENIGN_WRITABLE.contains(&FILES[fi % FILES.len()]) {
                    // A write makes a new version of the file.
                    let new_version = version + 1;
                    m.files[fi].1 = new_version;
                    let newf = ident(DM_ENTITY | 0x0200, fid, m.boot, m.id, new_version);
                    let newf_body = file_body
                        .replace(
                            &format!("\"cf:version\":{version},"),
                            &format!("\"cf:version\":{new_version},"),
                        )
                        .replace(
                            &format!("[file] {version}"),
                            &format!("[file] {new_version}"),
                        );
                    doc.add("entity", &enc(&newf), &newf_body);
                    let newf_s = enc(&newf);
                    rel(
                        m,
                        &mut doc,
                        "wasDerivedFrom",
                        "version_entity",
                        ("prov:usedEntity", "prov:generatedEntity"),
                        &file_s,
                        &newf_s,
                        rng,
                    );
                    let w = *rng.pick(WRITES);
                    rel(
                        m,
                        &mut doc,
                        "wasGeneratedBy",
                        w,
                        ("prov:activity", "prov:entity"),
                        &task1_s,
                        &newf_s,
                        rng,
                    );
                } else {
                    let r = *rng.pick(READS);
                    rel(
                        m,
                        &mut doc,
                        "used",
                        r,
                        ("prov:entity", "prov:activity"),
                        &file_s,
                        &task1_s,
                        rng,
                    );
                }
                if rng.below(4) == 0 {
                    m.next_node += 1;
                    let path = ident(DM_ENTITY | 0x0008_0000, m.next_node, m.boot, m.id, 0);
                    let name = FILES[fi % FILES.len()];
                    let path_body = format!(
                        "{},\"cf:pathname\":\"{name}\",\"prov:label\":\"[path] {name}\"",
                        common(m, m.next_node, "path", 0, epoch)
                    );
                    doc.add("entity", &enc(&path), &path_body);
                    let path_s = enc(&path);
                    rel(
                        m,
                        &mut doc,
                        "wasDerivedFrom",
                        "named",
                        ("prov:usedEntity", "prov:generatedEntity"),
                        &path_s,
                        &file_s,
                        rng,
                    );
                }
            }
            if rng.below(3) == 0 {
                // Clone a child task.
                m.next_node += 1;
                let child = ident(DM_ACTIVITY | 1, m.next_node, m.boot, m.id, 0);
                let cb = format!(
                    "{},\"cf:pid\":{},\"cf:vpid\":{},\"prov:label\":\"[task] 0\"",
                    common(m, m.next_node, "task", 0, epoch),
                    pid + 1,
                    pid + 1
                );
                doc.add("activity", &enc(&child), &cb);
                let child_s = enc(&child);
                rel(
                    m,
                    &mut doc,
                    "wasInformedBy",
                    "clone",
                    ("prov:informant", "prov:informed"),
                    &task1_s,
                    &child_s,
                    rng,
                );
            }
        }
        let records = doc.records;
        SimDocument {
            machine: m.id,
            json: doc.finish(),
            records,
        }
    }
}

impl Iterator for Simulation {
    type Item = SimDocument;

    fn next(&mut self) -> Option<SimDocument> {
        if self.machines.is_empty() || self.round >= self.per_machine {
            return None;
        }
        let doc = self.document(self.index);
        self.index += 1;
        if self.index == self.machines.len() {
            self.index = 0;
            self.round += 1;
        }
        Some(doc)
    }
}

/// The MQTT messages of simulated documents (topic `<prefix><machine>`, camflowd encoding).
#[cfg(feature = "mqtt")]
pub fn to_messages(
    docs: impl IntoIterator<Item = SimDocument>,
    topic_prefix: &str,
) -> Vec<crate::publish::Message> {
    docs.into_iter()
        .map(|d| crate::publish::Message {
            topic: format!("{topic_prefix}{}", d.machine),
            payload: crate::publish::encode_payload(d.json.as_bytes()),
            retain: false,
            machine: d.machine,
            json_bytes: d.json.len(),
        })
        .collect()
}

/// The `cf:` attributes of libprovenance v0.1.7 output (others came later).
const V0_1_7_ATTRIBUTES: [&str; 15] = [
    "cf:id",
    "cf:boot_id",
    "cf:machine_id",
    "cf:version",
    "cf:date",
    "cf:uid",
    "cf:gid",
    "cf:mode",
    "cf:uuid",
    "cf:pathname",
    "cf:address",
    "cf:allowed",
    "cf:sender",
    "cf:receiver",
    "cf:seq",
];

/// Numeric `cf:type` of vertices in libprovenance v0.1.7-v0.1.8 (values of the real v0.1.7
/// output; the decoder reads the type name from `prov:label`, so others get 0).
fn v0_1_7_vertex_type(name: &str) -> u64 {
    match name {
        "task" => 4,
        "file" => 32,
        "socket" => 1024,
        "address" => 16384,
        "path" => 65536,
        _ => 0,
    }
}

/// Rewrites simulated documents as ONE document in the libprovenance v0.1.7-v0.1.8 format,
/// pretty-printed over many lines with every machine merged, as the real v0.1.7 file is:
/// machine entities keyed by bare decimal ids (`prov:label` `[machine] N`, `cf:camflow`
/// `v0.1.7`); other elements keyed `cf:<base64>`; vertices with a numeric `cf:type`, the type
/// name only in `prov:label` (`[task] 0`; inodes also `"prov:type":"cf:file"`); relations with
/// the type in the string `cf:type`; numeric `cf:id` and `cf:machine_id`; `cf:taint` an
/// empty array; `cf:date` with milliseconds.
///
/// ```
/// use provdb::simulate::{to_v0_1_7, Simulation, SimulationOptions};
/// let opts = SimulationOptions { machines: 2, documents_per_machine: 1, records_per_document: 8, ..Default::default() };
/// let text = to_v0_1_7(Simulation::new(&opts));
/// assert!(text.lines().count() > 50);
/// assert!(text.contains("\"cf:camflow\": \"v0.1.7\""));
/// let batch = provdb::decode::decode_text(text.into_bytes())?;
/// assert_eq!(batch.vertices.iter().filter(|v| v.type_name == "machine").count(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_v0_1_7(docs: impl IntoIterator<Item = SimDocument>) -> String {
    use serde_json::{json, Map, Value};
    const SECTIONS: [&str; 6] = [
        "entity",
        "activity",
        "used",
        "wasGeneratedBy",
        "wasInformedBy",
        "wasDerivedFrom",
    ];
    const INODES: [&str; 7] = [
        "file",
        "directory",
        "link",
        "char",
        "block",
        "fifo",
        "socket",
    ];
    let mut sections: Vec<Map<String, Value>> = vec![Map::new(); SECTIONS.len()];
    let number = |v: Option<&Value>| -> Value {
        let text = v.and_then(Value::as_str).unwrap_or("0");
        json!(text
            .strip_prefix("cf:")
            .unwrap_or(text)
            .parse::<u64>()
            .unwrap_or(0))
    };
    for doc in docs {
        // The simulator's own output: always valid JSON of the current shape.
        let Ok(Value::Object(current)) = serde_json::from_str::<Value>(&doc.json) else {
            continue;
        };
        for (section, elements) in current {
            let Value::Object(elements) = elements else {
                continue;
            };
            if section == "agent" {
                // The machine: an entity keyed by its bare decimal id.
                for (_, attrs) in elements {
                    let attr = |k: &str| attrs.get(k).cloned().unwrap_or(json!(""));
                    sections[0].insert(
                        doc.machine.to_string(),
                        json!({
                            "prov:label": format!("[machine] {}", doc.machine),
                            "cf:camflow": "v0.1.7",
                            "cf:sysname": attr("cf:u_sysname"),
                            "cf:nodename": attr("cf:u_nodename"),
                            "cf:release": attr("cf:u_release"),
                            "cf:version": attr("cf:u_version"),
                            "cf:machine": attr("cf:u_machine"),
                        }),
                    );
                }
                continue;
            }
            let Some(index) = SECTIONS.iter().position(|s| *s == section) else {
                continue;
            };
            let is_vertex = index < 2;
            for (key, attrs) in elements {
                let Value::Object(mut attrs) = attrs else {
                    continue;
                };
                let ty = match attrs.remove("prov:type") {
                    Some(Value::String(t)) => t,
                    _ => continue,
                };
                // Only the attributes v0.1.7 had (endpoints and labels are `prov:` keys).
                attrs.retain(|k, _| {
                    k.starts_with("prov:") || V0_1_7_ATTRIBUTES.contains(&k.as_str())
                });
                let id = number(attrs.get("cf:id"));
                attrs.insert("cf:id".into(), id.clone());
                let machine = number(attrs.get("cf:machine_id"));
                attrs.insert("cf:machine_id".into(), machine);
                attrs.insert("cf:taint".into(), json!([]));
                if let Some(Value::String(date)) = attrs.get_mut("cf:date") {
                    date.push_str(&format!(".{:03}", id.as_u64().unwrap_or(0) % 1000));
                }
                if is_vertex {
                    attrs.insert("cf:type".into(), json!(v0_1_7_vertex_type(&ty)));
                    if INODES.contains(&ty.as_str()) {
                        attrs.insert("prov:type".into(), json!(format!("cf:{ty}")));
                    }
                    let version = attrs.get("cf:version").cloned().unwrap_or(json!(0));
                    let label = match attrs.get("prov:label").and_then(Value::as_str) {
                        Some(l) if l.starts_with(&format!("[{ty}]")) => l.to_owned(),
                        _ => format!("[{ty}] {version}"),
                    };
                    attrs.insert("prov:label".into(), json!(label));
                } else {
                    attrs.insert("cf:type".into(), json!(ty.clone()));
                    attrs.insert("prov:label".into(), json!(ty));
                }
                sections[index].insert(key, Value::Object(attrs));
            }
        }
    }
    let mut document = Map::new();
    document.insert(
        "prefix".into(),
        json!({"prov": "http://www.w3.org/ns/prov", "cf": "http://www.camflow.org"}),
    );
    for (name, elements) in SECTIONS.iter().zip(sections) {
        if !elements.is_empty() {
            document.insert((*name).into(), Value::Object(elements));
        }
    }
    // Serializing a map of strings, numbers and arrays cannot fail.
    let mut out = serde_json::to_string_pretty(&Value::Object(document)).unwrap_or_default();
    out.push('\n');
    out
}
