//! `provdb detect`: anomaly detection (UNICORN) over archives and simulated runs: train a
//! model from benign history, score history against it, evaluate on labelled runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use provdb::anomaly::archive::{latest_models, replay, save_model};
use provdb::anomaly::{
    Model, ModelScope, Params, ReplayFilter, Scored, Scorer, StoredModel, StreamCost, Trainer,
};
use provdb::{Database, DatabaseOptions, Detection};

use super::prune::parse_time_arg;
use super::stats::open_for_reading;

/// Arguments of `provdb detect`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Anomaly detection after UNICORN (NDSS 2020): each machine's edges \
are relabelled with the types of their R-hop in-neighbourhood (Weisfeiler-Lehman), counted \
in a histogram with exponential decay, and summarised every --interval edges by a \
sketch whose slot agreement estimates weighted Jaccard similarity (DartMinHash, in the role \
of UNICORN's HistoSketch). Training clusters the sketches of benign history into a model (medoids, \
thresholds, transitions between clusters); an interval whose sketch is farther than the \
threshold from every cluster the machine can reach is anomalous; so is one whose share of \
label kinds (hops 0-1: vertex types, in-edge and sender types) never seen in training is \
above the novelty threshold learned from the benign runs.\n\n\
Once the archive has a model, `import` and `serve` score every machine as data arrives \
(its own model, else the fleet model): an anomalous interval is an alert with rule \
`anomaly` (see `provdb alerts --rule anomaly`), published like the rules' alerts."
)]
pub struct DetectArgs {
    #[command(subcommand)]
    pub action: DetectAction,
}

/// `provdb detect` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DetectAction {
    /// Build a model from the archive's (benign) history and store it as the next version.
    Train(TrainArgs),
    /// Score the archive's history against its models, per machine and interval.
    Score(ScoreArgs),
    /// Train on some benign runs, score the other benign runs and the attack runs, and print
    /// precision, recall, accuracy, F1 and false-positive rate.
    Eval(EvalArgs),
}

/// Detector parameters that training chooses (scoring uses the model's own).
#[derive(Debug, Clone, clap::Args)]
pub struct ParamArgs {
    /// Hops of neighbourhood relabelling (1-4).
    #[arg(long, default_value_t = Params::default().hops)]
    pub hops: u8,
    /// Slots of each sketch.
    #[arg(long, default_value_t = Params::default().sketch_size)]
    pub sketch_size: u16,
    /// Edges of a machine per interval (one sketch each).
    #[arg(long, default_value_t = Params::default().snapshot_edges)]
    pub interval: u32,
    /// Factor on every histogram weight at each interval's end (0-0.99]: lower forgets
    /// sooner.
    #[arg(long, default_value_t = Params::default().decay)]
    pub decay: f64,
}

impl ParamArgs {
    fn params(&self) -> anyhow::Result<Params> {
        let p = Params {
            hops: self.hops,
            sketch_size: self.sketch_size,
            snapshot_edges: self.interval,
            decay: self.decay,
            ..Params::default()
        };
        if let Some(problem) = p.problem() {
            anyhow::bail!("{problem}");
        }
        Ok(p)
    }
}

/// Arguments of `provdb detect train`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Without --machine, trains the fleet model: every machine's history \
is one training sequence, and the model scores every machine that has no model of its own. \
With --machine, trains that machine's model. Models are versioned: training adds the next \
version and scoring uses the latest. Train on history known to be benign."
)]
pub struct TrainArgs {
    #[command(flatten)]
    pub history: HistoryArgs,
    #[command(flatten)]
    pub params: ParamArgs,
}

/// Which history of the archive to read.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// Only this machine (`train`: train this machine's own model; default: the fleet's).
    #[arg(long)]
    pub machine: Option<u32>,
    /// History from this time (Unix seconds or a date like 2026-11-28T10:00:00).
    #[arg(long, value_name = "T", value_parser = parse_time_arg)]
    pub since: Option<i64>,
    /// History up to this time.
    #[arg(long, value_name = "T", value_parser = parse_time_arg)]
    pub until: Option<i64>,
}

impl HistoryArgs {
    fn filter(&self) -> ReplayFilter {
        ReplayFilter {
            machine: self.machine,
            since: self.since,
            until: self.until,
        }
    }
}

/// Arguments of `provdb detect score`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Replays the archive's history per machine (in causal order) against \
the latest models and prints one row per machine and interval: the score (above 1 is \
anomalous) is the greater of the sketch score (distance to the nearest reachable cluster over \
its threshold) and the novelty score (the fraction of the interval's label kinds never seen \
in training, over the model's novelty threshold); then the cluster, and how many edges \
brought labels never seen in training.\n\n\
--format json prints one array of objects with the keys machine, model, interval, edges, \
from, until, score, sketch_score, novelty, novelty_threshold, distance, threshold, cluster, \
anomalous, novel_edges."
)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

/// Arguments of `provdb detect eval`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each PATH is a run: a folder of CamFlow files as `provdb simulate \
--out` writes (imported into a temporary archive; truth-*.json files are skipped), or a \
provdb archive. The first --train-runs benign runs (in the order given) train a fleet model; \
the other benign runs and every attack run are scored. A run is flagged when any interval \
is anomalous. Positives are attack runs: precision, recall, accuracy, F1 and the \
false-positive rate are over the runs not trained on (0 where undefined).\n\n\
--format json prints one object with the keys precision, recall, accuracy, f1, fpr and runs \
(path, kind, role, flagged, intervals, anomalous_intervals, max_score)."
)]
pub struct EvalArgs {
    /// Benign runs.
    #[arg(long, num_args = 1.., required = true, value_name = "PATH")]
    pub benign: Vec<PathBuf>,
    /// Attack runs.
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub attack: Vec<PathBuf>,
    /// Benign runs to train on (default: half of them, rounded up; at least one is held out
    /// when there are two or more).
    #[arg(long)]
    pub train_runs: Option<usize>,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    #[command(flatten)]
    pub params: ParamArgs,
}

pub fn run(db_path: &Path, args: DetectArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        DetectAction::Train(a) => train(db_path, a),
        DetectAction::Score(a) => score(db_path, a),
        DetectAction::Eval(a) => eval(a),
    }
}

/// Opens a database to write a model: no detection (its models are not needed, and a
/// damaged one must not stop a retraining).
fn open_for_training(db_path: &Path) -> anyhow::Result<Database> {
    if !db_path.join("CURRENT").exists() {
        anyhow::bail!("no provdb database at {}", db_path.display());
    }
    Database::open_with(
        db_path,
        DatabaseOptions {
            detection: Detection::Off,
            ..DatabaseOptions::default()
        },
    )
    .with_context(|| {
        format!(
            "opening {} (training writes the model: stop `provdb serve` on it first)",
            db_path.display()
        )
    })
}

fn train(db_path: &Path, args: TrainArgs) -> anyhow::Result<ExitCode> {
    let params = args.params.params()?;
    let db = open_for_training(db_path)?;
    let filter = args.history.filter();
    let mut trainer = Trainer::new(&params);
    trainer.start_run(&db_path.display().to_string());
    let edges = replay(db.store(), &filter, &mut |_| {}, &mut |m, e| {
        trainer.edge(m, e)
    })?;
    if edges == 0 {
        anyhow::bail!(
            "no edges to train on in {} (check --machine, --since, --until)",
            db_path.display()
        );
    }
    let (model, cost) = trainer.finish()?;
    let scope = args
        .history
        .machine
        .map_or(ModelScope::Fleet, ModelScope::Machine);
    let version = save_model(db.store(), scope, &model)?;
    println!(
        "{}",
        describe_model(&StoredModel {
            scope,
            version,
            model
        })
    );
    println!("{}", describe_cost(&cost));
    db.close()?;
    Ok(ExitCode::SUCCESS)
}

fn describe_model(m: &StoredModel) -> String {
    let t = &m.model.training;
    let thresholds: Vec<String> = m
        .model
        .thresholds
        .iter()
        .map(|t| format!("{t:.3}"))
        .collect();
    format!(
        "trained model {}: {} edges of {} machine(s) in {} run(s), {} intervals of {} edges; \
         {} cluster(s) (thresholds {}), {} transitions, {} known labels, novelty threshold \
         {:.3}, {} bytes",
        m.name(),
        t.edges,
        t.machines.len(),
        t.runs,
        t.snapshots,
        m.model.params.snapshot_edges,
        m.model.medoids.len(),
        thresholds.join(", "),
        m.model.transitions.len(),
        m.model.known_labels.len(),
        m.model.novelty_threshold,
        provdb::anomaly::codec::encode(&m.model).len(),
    )
}

fn describe_cost(cost: &StreamCost) -> String {
    format!(
        "streaming: {} edges, {:.2} us per edge (labels, histogram, sketches); largest \
         machine state {} KiB",
        cost.edges,
        cost.nanos as f64 / 1000.0 / cost.edges.max(1) as f64,
        cost.peak_machine_bytes / 1024
    )
}

/// Every interval of an archive's history, scored against its latest models.
fn score_archive(
    db: &Database,
    models: Vec<StoredModel>,
    filter: &ReplayFilter,
) -> anyhow::Result<Vec<Scored>> {
    let mut scorer = Scorer::new(models);
    let mut out: Vec<Scored> = Vec::new();
    replay(db.store(), filter, &mut |_| {}, &mut |m, e| {
        out.extend(scorer.edge(m, e))
    })?;
    // Each machine's last, partial interval.
    out.extend(scorer.flush());
    out.sort_by_key(|s| (s.machine, s.snapshot.index));
    Ok(out)
}

fn score(db_path: &Path, args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let db = open_for_reading(db_path)?;
    let models: Vec<StoredModel> = latest_models(db.store())?.into_values().collect();
    if models.is_empty() {
        anyhow::bail!(
            "no anomaly model in {} (build one with `provdb --db {} detect train`)",
            db_path.display(),
            db_path.display()
        );
    }
    let scored = score_archive(&db, models, &args.history.filter())?;
    if args.format == "json" {
        let rows: Vec<serde_json::Value> = scored.iter().map(scored_json).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header([
            "machine",
            "model",
            "interval",
            "edges",
            "until",
            "score",
            "sketch",
            "novelty",
            "cluster",
            "anomalous",
            "novel edges",
        ]);
        for s in &scored {
            table.add_row([
                s.machine.to_string(),
                s.model.clone(),
                s.snapshot.index.to_string(),
                s.snapshot.edges.to_string(),
                time_text(s.snapshot.until),
                format!("{:.2}", s.assessment.score),
                format!("{:.2}", s.assessment.sketch_score),
                format!("{:.3}", s.assessment.novelty),
                s.assessment.cluster.to_string(),
                if s.assessment.is_anomalous() {
                    "yes"
                } else {
                    ""
                }
                .to_owned(),
                s.snapshot.novel_edges.to_string(),
            ]);
        }
        println!("{table}");
    }
    Ok(ExitCode::SUCCESS)
}

fn time_text(t: Option<i64>) -> String {
    t.map(|t| provdb::query::Datum::Time(t).to_string())
        .unwrap_or_default()
}

fn scored_json(s: &Scored) -> serde_json::Value {
    serde_json::json!({
        "machine": s.machine,
        "model": s.model,
        "interval": s.snapshot.index,
        "edges": s.snapshot.edges,
        "from": s.snapshot.from.map(|t| time_text(Some(t))),
        "until": s.snapshot.until.map(|t| time_text(Some(t))),
        "score": s.assessment.score,
        "sketch_score": s.assessment.sketch_score,
        "novelty": s.assessment.novelty,
        "novelty_threshold": s.assessment.novelty_threshold,
        "distance": s.assessment.distance,
        "threshold": s.assessment.threshold,
        "cluster": s.assessment.cluster,
        "anomalous": s.assessment.is_anomalous(),
        "novel_edges": s.snapshot.novel_edges,
    })
}

/// A run of `detect eval`: an archive, or a folder imported into a temporary one.
struct Run {
    path: PathBuf,
    db: Database,
    /// The temporary archive to delete afterwards.
    temporary: Option<PathBuf>,
}

impl Run {
    fn open(path: &Path, n: usize) -> anyhow::Result<Run> {
        let options = DatabaseOptions {
            detection: Detection::Off,
            ..DatabaseOptions::default()
        };
        if path.join("CURRENT").exists() {
            let db = open_for_reading(path)?;
            return Ok(Run {
                path: path.to_owned(),
                db,
                temporary: None,
            });
        }
        let files = provdb::import::files_to_import(&[path.to_owned()])?;
        if files.is_empty() || !path.is_dir() {
            anyhow::bail!(
                "{}: neither a provdb archive nor a folder of CamFlow files",
                path.display()
            );
        }
        let temporary =
            std::env::temp_dir().join(format!("provdb-detect-eval-{}-{n}", std::process::id()));
        let db = Database::open_with(&temporary, options)
            .with_context(|| format!("creating {}", temporary.display()))?;
        let imported = db.import_files(&files, &mut |_| {});
        let run = Run {
            path: path.to_owned(),
            db,
            temporary: Some(temporary),
        };
        imported.with_context(|| format!("importing {}", path.display()))?;
        Ok(run)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(t) = &self.temporary {
            // Best effort: a leftover temporary archive is only disk.
            let _ = std::fs::remove_dir_all(t);
        }
    }
}

/// One run's outcome in `detect eval`.
struct Outcome {
    path: PathBuf,
    attack: bool,
    trained: bool,
    intervals: usize,
    anomalous: usize,
    max_score: f64,
}

impl Outcome {
    fn flagged(&self) -> bool {
        self.anomalous > 0
    }
}

fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let params = args.params.params()?;
    let n_benign = args.benign.len();
    let n_train = args
        .train_runs
        .unwrap_or(n_benign.div_ceil(2))
        .clamp(1, n_benign.max(1));
    let n_train = if n_benign >= 2 {
        n_train.min(n_benign - 1)
    } else {
        n_train
    };
    let mut trainer = Trainer::new(&params);
    let mut outcomes: Vec<Outcome> = Vec::new();
    for (i, path) in args.benign.iter().take(n_train).enumerate() {
        let run = Run::open(path, i)?;
        trainer.start_run(&path.display().to_string());
        replay(
            run.db.store(),
            &ReplayFilter::default(),
            &mut |_| {},
            &mut |m, e| trainer.edge(m, e),
        )?;
        outcomes.push(Outcome {
            path: path.clone(),
            attack: false,
            trained: true,
            intervals: 0,
            anomalous: 0,
            max_score: 0.0,
        });
    }
    let (model, cost): (Model, _) = trainer.finish()?;
    let stored = StoredModel {
        scope: ModelScope::Fleet,
        version: 1,
        model,
    };
    let tests = args
        .benign
        .iter()
        .skip(n_train)
        .map(|p| (p, false))
        .chain(args.attack.iter().map(|p| (p, true)));
    for (i, (path, attack)) in tests.enumerate() {
        let run = Run::open(path, n_train + i)?;
        let scored = score_archive(&run.db, vec![stored.clone()], &ReplayFilter::default())?;
        outcomes.push(Outcome {
            path: run.path.clone(),
            attack,
            trained: false,
            intervals: scored.len(),
            anomalous: scored
                .iter()
                .filter(|s| s.assessment.is_anomalous())
                .count(),
            max_score: scored
                .iter()
                .map(|s| s.assessment.score)
                .fold(0.0, f64::max),
        });
    }
    let tested = || outcomes.iter().filter(|o| !o.trained);
    let count = |attack: bool, flagged: bool| {
        tested()
            .filter(|o| o.attack == attack && o.flagged() == flagged)
            .count() as f64
    };
    let (tp, fn_, fp, tn) = (
        count(true, true),
        count(true, false),
        count(false, true),
        count(false, false),
    );
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    let metrics = Metrics {
        precision,
        recall,
        accuracy: ratio(tp + tn, tp + tn + fp + fn_),
        f1: ratio(2.0 * precision * recall, precision + recall),
        fpr: ratio(fp, fp + tn),
    };
    if args.format == "json" {
        let runs: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|o| {
                serde_json::json!({
                    "path": o.path.display().to_string(),
                    "kind": if o.attack { "attack" } else { "benign" },
                    "role": if o.trained { "train" } else { "test" },
                    "flagged": o.flagged(),
                    "intervals": o.intervals,
                    "anomalous_intervals": o.anomalous,
                    "max_score": o.max_score,
                })
            })
            .collect();
        let out = serde_json::json!({
            "precision": metrics.precision,
            "recall": metrics.recall,
            "accuracy": metrics.accuracy,
            "f1": metrics.f1,
            "fpr": metrics.fpr,
            "runs": runs,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", describe_model(&stored));
        println!("{}", describe_cost(&cost));
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header([
            "run",
            "kind",
            "role",
            "intervals",
            "anomalous",
            "max score",
            "flagged",
        ]);
        for o in &outcomes {
            table.add_row([
                o.path.display().to_string(),
                if o.attack { "attack" } else { "benign" }.to_owned(),
                if o.trained { "train" } else { "test" }.to_owned(),
                o.intervals.to_string(),
                o.anomalous.to_string(),
                format!("{:.2}", o.max_score),
                if o.flagged() { "yes" } else { "" }.to_owned(),
            ]);
        }
        println!("{table}");
        println!(
            "precision {:.3}  recall {:.3}  accuracy {:.3}  F1 {:.3}  FPR {:.3}  (over {} runs not trained on)",
            metrics.precision,
            metrics.recall,
            metrics.accuracy,
            metrics.f1,
            metrics.fpr,
            tested().count()
        );
    }
    Ok(ExitCode::SUCCESS)
}

struct Metrics {
    precision: f64,
    recall: f64,
    accuracy: f64,
    f1: f64,
    fpr: f64,
}
