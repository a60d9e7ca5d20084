//! `provdb simulate`: synthetic CamFlow W3C documents for a fleet of machines.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use provdb::ingest::BrokerUrl;
use provdb::publish::{publish_messages, PublishOptions};
use provdb::simulate::scenarios::{simulate_scenarios, Scenario, ScenarioOptions};
use provdb::simulate::{to_messages, Simulation, SimulationOptions};

/// Arguments of `provdb simulate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Writes W3C PROV-JSON documents in the current CamFlow format, one per \
line, deterministic from --seed: to stdout, to one file per machine in --out DIR, or straight \
to a broker with --broker (as camflowd would publish them). With --format v0.1.7, writes every \
machine's documents merged into ONE pretty-printed document in the libprovenance v0.1.7-v0.1.8 \
format (to stdout, or to DIR/camflow-v0.1.7.json).

Attack scenarios (--scenario NAME, or all for the twelve on distinct machines): each machine's \
benign activity with one attack embedded, as a short causal chain in the current CamFlow \
format, plus its ground truth (truth-NAME.json: the scenario, the machine, the attack's key \
vertices with their roles and its edges, in order). With --out DIR, machine-<id>.log and \
truth-NAME.json go to DIR; with --broker, the documents are published and the truths printed \
on stdout as a JSON array. --documents is then the benign documents around each attack.

  exfiltration          curl reads ~/.ssh/id_rsa, connects out and sends it
  download-exec         wget receives a file into ~/.cache, chmod +x, the shell executes it
  webshell              apache2 receives a request, spawns sh -c, which runs whoami
  reverse-shell         bash connected to an external host receives and sends on one socket
  privilege-escalation  a user's exploit does setuid to uid 0 and starts a root shell
  tmp-exec              cp copies a tool to /dev/shm, chmod, executed from there
  log-tampering         truncate empties /var/log/auth.log, rm unlinks /root/.bash_history
  kernel-module         python3 loads /tmp/.r/rk.ko (load_file, load_module)
  persistence           curl receives data and writes ~/.ssh/authorized_keys and a crontab
  fileless              python3 receives a program, writes it to a memfd and executes it
  credential-hunt       find and grep search for keys and passwords, cat reads ~/.aws/credentials
  sensitive-link        ln hard-links /etc/shadow as /tmp/.s"
)]
pub struct SimulateArgs {
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of machines.
    #[arg(long, default_value_t = 1)]
    pub machines: u32,
    /// Documents (MQTT messages) per machine.
    #[arg(long, default_value_t = 10)]
    pub documents: u64,
    /// Target records per document.
    #[arg(long, default_value_t = 40)]
    pub records: usize,
    /// Folder for one log file per machine (`machine-<id>.log`).
    #[arg(long, conflicts_with = "broker")]
    pub out: Option<PathBuf>,
    /// Publish to this broker (mqtt://HOST:PORT) instead of writing files.
    #[arg(long)]
    pub broker: Option<String>,
    /// QoS when publishing.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Messages per second when publishing.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SimFormat::Current)]
    pub format: SimFormat,
    /// Topic prefix when publishing.
    #[arg(long, default_value = "camflow/provenance/")]
    pub topic_prefix: String,
    /// Embed an attack scenario (one of the twelve names below, or `all`) in benign activity
    /// and write its ground truth.
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,
}

/// CamFlow output formats the simulator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SimFormat {
    /// libprovenance v0.5.x: one W3C document per line (per MQTT message).
    Current,
    /// libprovenance v0.1.7-v0.1.8: one pretty-printed document with every machine.
    #[value(name = "v0.1.7")]
    V017,
}

pub fn run(_db: &Path, args: SimulateArgs) -> anyhow::Result<ExitCode> {
    if let Some(name) = &args.scenario {
        return run_scenarios(name, &args);
    }
    let opts = SimulationOptions {
        seed: args.seed,
        machines: args.machines,
        documents_per_machine: args.documents,
        records_per_document: args.records,
    };
    let sim = Simulation::new(&opts);
    if args.format == SimFormat::V017 {
        anyhow::ensure!(
            args.broker.is_none(),
            "--format v0.1.7 writes files only (camflowd of that era is not simulated over MQTT)"
        );
        let text = provdb::simulate::to_v0_1_7(sim);
        match &args.out {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let path = dir.join("camflow-v0.1.7.json");
                std::fs::write(&path, &text)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(url) = &args.broker {
        let url = BrokerUrl::parse(url).map_err(anyhow::Error::msg)?;
        let messages = to_messages(sim, &args.topic_prefix);
        let mut options = PublishOptions::new(url);
        options.qos = args.qos;
        options.rate = args.rate;
        options.ack_timeout = Duration::from_secs(300);
        let report = publish_messages(&messages, &options)?;
        eprintln!(
            "simulated {} machines: published {} messages ({:.2} MB JSON) in {:.2} s",
            args.machines,
            report.messages,
            report.json_bytes as f64 / 1e6,
            report.seconds
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut records = 0usize;
    let mut docs = 0usize;
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut files = std::collections::HashMap::new();
        for d in sim {
            let file = match files.entry(d.machine) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let path = dir.join(format!("machine-{}.log", d.machine));
                    let f = std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    e.insert(std::io::BufWriter::new(f))
                }
            };
            writeln!(file, "{}", d.json)?;
            records += d.records;
            docs += 1;
        }
        for (_, mut f) in files {
            f.flush()?;
        }
        eprintln!(
            "wrote {docs} documents ({records} records) to {}",
            dir.display()
        );
    } else {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        for d in sim {
            writeln!(out, "{}", d.json)?;
            records += d.records;
            docs += 1;
        }
        out.flush()?;
        eprintln!("wrote {docs} documents ({records} records)");
    }
    Ok(ExitCode::SUCCESS)
}

/// `simulate --scenario`: each scenario's machine to its own log, its truth beside it.
fn run_scenarios(name: &str, args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let scenarios = Scenario::parse_list(name)?;
    anyhow::ensure!(
        args.format == SimFormat::Current,
        "--scenario writes the current CamFlow format only"
    );
    anyhow::ensure!(
        args.machines == 1,
        "--machines does not apply to --scenario: each scenario runs on its own machine"
    );
    anyhow::ensure!(
        args.out.is_some() || args.broker.is_some(),
        "--scenario needs --out DIR or --broker URL (the ground truth is written beside the documents)"
    );
    let options = ScenarioOptions {
        seed: args.seed,
        background_documents: args.documents,
        records_per_document: args.records,
    };
    let runs = simulate_scenarios(&scenarios, &options);
    if let Some(url) = &args.broker {
        let url = BrokerUrl::parse(url).map_err(anyhow::Error::msg)?;
        let docs = runs.iter().flat_map(|r| r.documents.iter().cloned());
        let messages = to_messages(docs, &args.topic_prefix);
        let mut options = PublishOptions::new(url);
        options.qos = args.qos;
        options.rate = args.rate;
        options.ack_timeout = Duration::from_secs(300);
        let report = publish_messages(&messages, &options)?;
        let truths: Vec<_> = runs.iter().map(|r| r.truth.to_json()).collect();
        println!("{}", serde_json::Value::Array(truths));
        eprintln!(
            "simulated {} scenarios: published {} messages in {:.2} s",
            runs.len(),
            report.messages,
            report.seconds
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(dir) = &args.out else {
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for run in &runs {
        let path = dir.join(format!("machine-{}.log", run.truth.machine));
        let mut text = String::new();
        for d in &run.documents {
            text.push_str(&d.json);
            text.push('\n');
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        let truth_path = dir.join(run.truth.file_name());
        let truth = serde_json::to_string_pretty(&run.truth.to_json())?;
        std::fs::write(&truth_path, truth + "\n")
            .with_context(|| format!("writing {}", truth_path.display()))?;
        eprintln!(
            "{}: machine {} ({} documents) -> {}, {}",
            run.truth.scenario,
            run.truth.machine,
            run.documents.len(),
            path.display(),
            truth_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
