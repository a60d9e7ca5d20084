//! Rule files: the default pack, `provdb rules list|check`, `--rules` and
//! `--no-default-rules`, errors with file, line and column, and rule text as adversarial input.

mod common;

use std::path::Path;
use std::process::Command;

use common::{provdb, stdout_of};
use proptest::prelude::*;
use provdb::detect::{RuleSet, DEFAULT_PACK};
use provdb::simulate::scenarios::Scenario;

/// The pack's rule names are the scenarios' names (themselves checked against the issue's
/// list in tests/simulate_scenarios.rs).
fn pack_names() -> Vec<&'static str> {
    Scenario::ALL.iter().map(|s| s.name()).collect()
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_provdb"))
}

#[test]
fn the_default_pack_has_the_twelve_rules_with_their_attack_ids() {
    let pack = RuleSet::default_pack();
    let names: Vec<&str> = pack.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, pack_names());
    for r in pack.rules() {
        assert!(
            !r.attack.is_empty() && !r.description.is_empty(),
            "{}",
            r.name
        );
        assert!(r.attack.iter().all(|a| a.starts_with('T')), "{}", r.name);
    }
}

#[test]
fn rules_list_shows_the_pack_and_user_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.toml"),
        "[[rule]]\nname = \"any-module\"\nseverity = \"low\"\ndescription = \"d\"\npattern = \"(t:task) -[:load_module]-> ()\"\n",
    )
    .unwrap();
    let out = bin().args(["rules", "list", "--json"]).output().unwrap();
    let listed: serde_json::Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, pack_names());
    let out = bin()
        .args(["rules", "list", "--json", "--no-default-rules", "--rules"])
        .arg(dir.path())
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "any-module");
    assert!(listed[0]["origin"].as_str().unwrap().ends_with("mine.toml"));
}

/// Runs `rules check` on `text`; returns (exit code, stderr).
fn check(dir: &Path, text: &str) -> (i32, String) {
    let file = dir.join("r.toml");
    std::fs::write(&file, text).unwrap();
    let out = bin().args(["rules", "check"]).arg(&file).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD: &str = r#"[sets]
scanners = ["*/nmap", "*/masscan"]

[[rule]]
name = "scanner"
severity = "high"
description = "A network scanner runs."
attack = ["T1046"]
window = "24h"
summary = "{m.exe} ran"
pattern = "(f:file where path in $scanners) -[:exec]-> (m:process_memory)"
"#;

#[test]
fn rules_check_accepts_a_good_file_and_places_each_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = check(dir.path(), GOOD);
    assert_eq!(code, 0, "{err}");
    // (broken text, line, column, words of the message)
    let cases: [(String, usize, usize, &str); 9] = [
        (
            GOOD.replace("$scanners", "$scaners"),
            11,
            34,
            "unknown set `$scaners`",
        ),
        (
            GOOD.replace("path in", "pth in"),
            11,
            26,
            "unknown property `pth`",
        ),
        (
            GOOD.replace("\"high\"", "\"urgent\""),
            6,
            12,
            "severity `urgent`",
        ),
        (
            GOOD.replace("-[:exec]->", "-[:exec*1..3]->"),
            11,
            45,
            "one edge",
        ),
        (
            GOOD.replace("(m:process_memory)", "(m:process_memory"),
            11,
            73,
            "pattern:",
        ),
        (
            GOOD.replace("\"24h\"", "\"a day\""),
            9,
            10,
            "window `a day`",
        ),
        (GOOD.replace("\"T1046\"", "\"lateral\""), 8, 10, "ATT&CK"),
        (
            GOOD.replace("name = \"scanner\"", "name = \"exfiltration\""),
            5,
            8,
            "already defined in (default pack)",
        ),
        (
            GOOD.replace("summary", "sumary"),
            10,
            1,
            "unknown key `sumary`",
        ),
    ];
    for (text, line, column, words) in cases {
        let (code, err) = check(dir.path(), &text);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(&format!("r.toml:{line}:{column}: ")), "{err}");
        assert!(err.contains(words), "{err}");
        assert!(err.contains('^'), "a caret under the place: {err}");
    }
    let (code, err) = check(dir.path(), "[[rule]\nname = 1");
    assert_eq!(code, 1);
    assert!(
        err.contains("r.toml:1:"),
        "TOML syntax errors are placed too: {err}"
    );
}

#[test]
fn user_rules_run_and_the_pack_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["simulate", "--scenario", "kernel-module", "--out"])
        .arg(dir.path().join("sc"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = std::fs::read_dir(dir.path().join("sc"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("mine.toml"),
        "[[rule]]\nname = \"any-module\"\nseverity = \"low\"\ndescription = \"d\"\npattern = \"(t:task) -[:load_module]-> ()\"\n",
    )
    .unwrap();
    let alerts_of = |db: &Path| -> Vec<String> {
        let out = provdb(db)
            .args(["alerts", "--format", "json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&stdout_of(&out)).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| a["rule"].as_str().unwrap().to_owned())
            .collect()
    };
    let off = dir.path().join("off");
    let out = provdb(&off)
        .args(["import", "-q", "--no-default-rules"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(alerts_of(&off).is_empty());
    let mine = dir.path().join("mine");
    let out = provdb(&mine)
        .args(["import", "-q", "--no-default-rules", "--rules"])
        .arg(&rules)
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        stdout_of(&out).contains("alerts: 1 new"),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(alerts_of(&mine), ["any-module"]);
    let both = dir.path().join("both");
    provdb(&both)
        .args(["import", "-q", "--rules"])
        .arg(&rules)
        .arg(&log)
        .output()
        .unwrap();
    let mut rules_fired = alerts_of(&both);
    rules_fired.sort();
    assert_eq!(rules_fired, ["any-module", "kernel-module"]);
    // A broken rule file stops the import before anything is stored.
    std::fs::write(rules.join("broken.toml"), "[[rule]]\nname = \"x\"\n").unwrap();
    let bad = dir.path().join("bad");
    let out = provdb(&bad)
        .args(["import", "-q", "--rules"])
        .arg(&rules)
        .arg(&log)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.toml"));
    assert!(!bad.join("CURRENT").exists());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Rule text is outside input: whatever it is, parsing returns rules or an error that
    /// says where, and never panics.
    #[test]
    fn any_rule_text_is_a_result(text in ".{0,400}") {
        if let Err(e) = RuleSet::parse_text(&text, "fuzz.toml") {
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn mutated_pack_text_is_a_result(cuts in proptest::collection::vec((0usize..20_000, 0usize..40, ".{0,8}"), 1..4)) {
        // The pack's rules under new names (its sets are already defined).
        let rules = &DEFAULT_PACK[DEFAULT_PACK.find("[[rule]]").unwrap_or(0)..];
        let mut text = rules.replace("[[rule]]\nname = \"", "[[rule]]\nname = \"x");
        for (at, len, insert) in cuts {
            let mut start = at % text.len().max(1);
            while !text.is_char_boundary(start) { start -= 1; }
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            text.replace_range(start..end, &insert);
        }
        if let Err(e) = RuleSet::parse_text(&text, "fuzz.toml") {
            prop_assert!(!e.message.is_empty());
            if let Some(line) = e.line {
                prop_assert!(line <= text.lines().count() + 1);
            }
        }
    }
}
