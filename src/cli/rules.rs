//! `provdb rules list|check`, and the `--rules`/`--no-default-rules` options of the commands
//! that ingest.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use provdb::detect::{RuleSet, RulesOptions};
use provdb::Detection;

/// Which detection rules run while ingesting.
#[derive(Debug, Clone, clap::Args)]
pub struct RulesArgs {
    /// Add the rules of a TOML file, or of every `*.toml` in a folder (repeatable).
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Turn the default rule pack off (its named sets stay usable by --rules files).
    #[arg(long)]
    pub no_default_rules: bool,
}

impl RulesArgs {
    fn options(&self) -> RulesOptions {
        RulesOptions {
            no_default_rules: self.no_default_rules,
            paths: self.rules.clone(),
        }
    }

    /// The detection these options ask for (a rule file that does not load is an error
    /// before anything is ingested).
    pub fn detection(&self) -> anyhow::Result<Detection> {
        if self.rules.is_empty() {
            return Ok(if self.no_default_rules {
                Detection::Off
            } else {
                Detection::DefaultPack
            });
        }
        let set = RuleSet::load(&self.options()).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Detection::Rules(Arc::new(set)))
    }
}

/// Arguments of `provdb rules`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "A rule file is TOML: a [sets] table of named lists of globs, and \
[[rule]] tables with name, severity (low|medium|high|critical), description, attack (ATT&CK \
ids), window (e.g. 24h), anchor (sender|receiver), summary (with {var.property} \
placeholders) and pattern: one edge of the query language, the edge that completes the \
attack, e.g. \"(f:file where trust = 'downloaded') -[:exec]-> (m:process_memory)\". \
See the README's Detection section."
)]
pub struct RulesCommandArgs {
    #[command(subcommand)]
    pub action: RulesAction,
}

/// What `provdb rules` does.
#[derive(Debug, clap::Subcommand)]
pub enum RulesAction {
    /// Show the active rules (the default pack, plus --rules, minus --no-default-rules).
    List {
        #[command(flatten)]
        rules: RulesArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also list the named sets and their globs.
        #[arg(long)]
        sets: bool,
    },
    /// Validate rule files (errors name the file, line and column); exit 1 on an error.
    Check {
        /// Rule files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn run(args: RulesCommandArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        RulesAction::List { rules, json, sets } => {
            let set = RuleSet::load(&rules.options()).map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                let items: Vec<serde_json::Value> = set
                    .rules()
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "name": r.name,
                            "severity": r.severity.as_str(),
                            "description": r.description,
                            "attack": r.attack,
                            "window": r.window,
                            "patterns": r.patterns,
                            "origin": r.origin,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&items)?);
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED)
                .set_header(["rule", "severity", "ATT&CK", "pattern", "from"]);
            for r in set.rules() {
                t.add_row([
                    r.name.clone(),
                    r.severity.to_string(),
                    r.attack.join(" "),
                    r.patterns.join("\n"),
                    r.origin.clone(),
                ]);
            }
            println!("{t}");
            println!("{} rules", set.rules().len());
            if sets {
                for (name, globs) in set.sets() {
                    println!("${name}: {}", globs.join(" "));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RulesAction::Check { files } => {
            let mut failed = false;
            for file in &files {
                match RuleSet::check_file(file) {
                    Ok(rules) => {
                        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
                        println!(
                            "{}: ok, {} rule(s){}{}",
                            file.display(),
                            rules.len(),
                            if names.is_empty() { "" } else { ": " },
                            names.join(", ")
                        );
                    }
                    Err(e) => {
                        failed = true;
                        eprintln!("error: {e}");
                    }
                }
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
