//! `provdb simulate`: synthetic CamFlow W3C documents for a fleet of machines.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use provdb::ingest::BrokerUrl;
use provdb::publish::{publish_messages, PublishOptions};
use provdb::simulate::{to_messages, Simulation, SimulationOptions};

/// Arguments of `provdb simulate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Writes W3C PROV-JSON documents in the current CamFlow format, one per \
line, deterministic from --seed: to stdout, to one file per machine in --out DIR, or straight \
to a broker with --broker (as camflowd would publish them). With --format v0.1.7, writes every \
machine's documents merged into ONE pretty-printed document in the libprovenance v0.1.7-v0.1.8 \
format (to stdout, or to DIR/camflow-v0.1.7.json)."
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
