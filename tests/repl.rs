//! `provdb repl` driven through a pseudo-terminal (Python's `pty` module as the expect tool):
//! tab completion, a multi-line statement, `.mode json` and `.quit`.

use std::process::Command;

use provdb::Database;
use provdb_storage::{ExternalId, Placement, ProvClass, RecordBatch, Value, VertexInput};

const DRIVER: &str = r#"
import os, pty, sys, time, select, re
binary, db, hist = sys.argv[1], sys.argv[2], sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm"
    os.execv(binary, [binary, "--db", db, "repl", "--history", hist])
buf = b""
def expect(pattern, timeout=20):
    global buf
    end = time.time() + timeout
    while time.time() < end:
        m = re.search(pattern.encode(), buf)
        if m:
            buf = buf[m.end():]
            return
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            buf += data
    sys.stdout.write("TIMEOUT waiting for %r; got %r\n" % (pattern, buf[-2000:]))
    sys.exit(3)
def send(s):
    os.write(fd, s.encode())
    time.sleep(0.3)
expect(r"provdb> ")
# Completion of a type name: "(v:ta<TAB>" must become "(v:task", or the statement below
# fails with "unknown vertex type `ta`" and "1 row" never shows.
send("(v:ta\t")
# Multi-line statement: the first line has no ';', so the editor keeps reading.
send(")\r")
send("| where v.pid = 42 | return v.pid;\r")
expect(r"42")
expect(r"1 row \(")
send(".mode json\r")
expect(r"provdb> ")
send("(v:task) | return v.pid as pid;\r")
expect(r'\{"pid": 42\}')
send("(v) | count;\r")
expect(r'"count": 2')
send(".quit\r")
_, status = os.waitpid(pid, 0)
sys.stdout.write("EXIT %d\n" % os.WEXITSTATUS(status))
"#;

#[test]
fn repl_through_a_pty() {
    let python = ["python3", "python"].into_iter().find(|p| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(python) = python else {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("CI=true but python3 (the pty driver) is missing");
        }
        eprintln!("SKIPPED: python3 not found, cannot drive a pseudo-terminal");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("db");
    let db = Database::open(&db_path).expect("open");
    let v = |id: &str, t: &str, pid: i64| VertexInput {
        ext_id: ExternalId::parse(id),
        type_name: t.into(),
        class: ProvClass::Activity,
        placement: Placement::default(),
        attrs: vec![("cf:pid".into(), Value::Int(pid))],
    };
    db.write(&RecordBatch {
        vertices: vec![v("t1", "task", 42), v("f1", "file", 0)],
        ..Default::default()
    })
    .expect("write");
    db.close().expect("close");
    let hist = dir.path().join("history");
    let out = Command::new(python)
        .arg("-c")
        .arg(DRIVER)
        .arg(env!("CARGO_BIN_EXE_provdb"))
        .arg(&db_path)
        .arg(&hist)
        .output()
        .expect("run the driver");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("EXIT 0"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // History persisted, multi-line statement as one entry.
    let history = std::fs::read_to_string(&hist).expect("history written");
    assert!(history.contains(".mode json"), "{history}");
    assert!(history.contains("return v.pid"), "{history}");
    assert!(history.contains("(v:task)"), "{history}");
}
