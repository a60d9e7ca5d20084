//! `provdb query --db A --db B`: one query over two archives answers as over one archive
//! holding both (rows merged, counts summed).

mod common;

use std::path::Path;

use common::{import, provdb, simulated_logs, stdout_of};

fn query(dbs: &[&Path], q: &str) -> Vec<String> {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_provdb"));
    for db in dbs {
        c.arg("--db").arg(db);
    }
    let text = stdout_of(&c.args(["query", "--format", "csv", q]).output().unwrap());
    text.lines().map(str::to_owned).collect()
}

#[test]
fn two_archives_answer_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let files = simulated_logs(dir.path(), 2, 15);
    assert_eq!(files.len(), 2);
    let (a, b, both) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("both"),
    );
    import(&a, &files[..1]);
    import(&b, &files[1..]);
    import(&both, &files);
    let (a, b, both) = (a.as_path(), b.as_path(), both.as_path());

    for count in [
        "(v) | count",
        "() -[e:read|write]-> () | count",
        "(t:task) -[e]-> (f) | count",
    ] {
        let merged = query(&[a, b], count);
        assert_eq!(merged, query(&[both], count), "{count}");
        let parts: i64 = [a, b]
            .iter()
            .map(|db| query(&[db], count)[1].parse::<i64>().unwrap())
            .sum();
        assert_eq!(merged[1], parts.to_string());
    }
    let rows = "(x) -[e]-> (y) | return e.id, e.type, x.id, y.id";
    let mut merged = query(&[a, b], rows);
    let mut single = query(&[both], rows);
    assert_eq!(merged.remove(0), single.remove(0), "header");
    assert!(merged.len() > 10);
    merged.sort();
    single.sort();
    assert_eq!(merged, single);
    // Rows come archive by archive, in --db order.
    let first_of_a = &query(&[a], rows)[1];
    assert_eq!(&query(&[a, b], rows)[1], first_of_a);

    let out = provdb(a).arg("--db").arg(b).arg("stats").output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only `query` and `repl` take several --db")
    );
}
