//! Output of query results shared by `provdb query` and `provdb repl`: table, JSON, CSV and
//! Graphviz DOT.

use std::io::Write;

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use provdb::query::{Datum, QueryResult};
use provdb_storage::{find_attr, GraphRead, Vertex};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table that fits the terminal.
    Table,
    /// One JSON array of row objects keyed by the return items as written.
    Json,
    /// CSV with a header line.
    Csv,
    /// A Graphviz digraph of the matched vertices and edges.
    Dot,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "table" => Some(Format::Table),
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "dot" => Some(Format::Dot),
            _ => None,
        }
    }
}

/// A cell as JSON.
pub fn datum_json(d: &Datum) -> serde_json::Value {
    use serde_json::json;
    match d {
        Datum::Null => serde_json::Value::Null,
        Datum::Bool(b) => json!(b),
        Datum::Int(i) => json!(i),
        Datum::Float(x) => json!(x),
        Datum::Str(s) => json!(s),
        Datum::Time(_) => json!(d.to_string()),
        Datum::Vertex(v) => json!({"id": v.ext_id, "type": v.type_name, "name": v.name}),
        Datum::Edge(e) => json!({
            "id": e.ext_id,
            "type": e.type_name,
            "time": e.time.map(|_| Datum::Time(e.time.unwrap_or_default()).to_string()),
        }),
    }
}

fn cell_text(d: &Datum) -> String {
    match d {
        Datum::Null => String::new(),
        other => other.to_string(),
    }
}

/// Renders a result. `width`: the terminal width for tables (`None`: no wrapping).
pub fn render(
    out: &mut dyn Write,
    g: &dyn GraphRead,
    result: &QueryResult,
    format: Format,
    width: Option<u16>,
) -> anyhow::Result<()> {
    match format {
        Format::Table => {
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            match width {
                Some(w) => {
                    t.set_content_arrangement(ContentArrangement::Dynamic);
                    t.set_width(w);
                }
                None => {
                    t.set_content_arrangement(ContentArrangement::Disabled);
                }
            }
            t.set_header(result.columns.iter());
            for r in &result.rows {
                t.add_row(r.values.iter().map(cell_text));
            }
            writeln!(out, "{t}")?;
        }
        Format::Json => {
            // Keys in the order written (serde_json's map would sort them).
            write!(out, "[")?;
            for (i, r) in result.rows.iter().enumerate() {
                write!(out, "{}\n  {{", if i > 0 { "," } else { "" })?;
                for (j, (c, v)) in result.columns.iter().zip(&r.values).enumerate() {
                    write!(
                        out,
                        "{}{}: {}",
                        if j > 0 { ", " } else { "" },
                        serde_json::to_string(c)?,
                        serde_json::to_string(&datum_json(v))?
                    )?;
                }
                write!(out, "}}")?;
            }
            writeln!(out, "{}]", if result.rows.is_empty() { "" } else { "\n" })?;
        }
        Format::Csv => {
            let line: Vec<String> = result.columns.iter().map(|c| csv_field(c)).collect();
            writeln!(out, "{}", line.join(","))?;
            for r in &result.rows {
                let line: Vec<String> = r.values.iter().map(|v| csv_field(&cell_text(v))).collect();
                writeln!(out, "{}", line.join(","))?;
            }
        }
        Format::Dot => {
            write!(out, "{}", to_dot(g, result)?)?;
        }
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn vertex_label(v: &Vertex, name: Option<String>) -> String {
    let mut label = v.type_name.to_string();
    if let Some(pid) = find_attr(&v.attrs, "pid") {
        label.push_str(&format!(" {pid}"));
    }
    if let Some(n) = name {
        label.push('\n');
        label.push_str(&n);
    }
    label
}

fn shape(type_name: &str) -> &'static str {
    match type_name {
        "task" => "box",
        "process_memory" => "box3d",
        "socket" | "address" | "packet" => "diamond",
        "path" | "file_name" => "note",
        "machine" => "house",
        _ => "ellipse",
    }
}

/// A Graphviz digraph of the vertices and edges the rows matched, labelled with type and name.
pub fn to_dot(g: &dyn GraphRead, result: &QueryResult) -> anyhow::Result<String> {
    let sub = result.subgraph(g)?;
    let mut s = String::from("digraph provenance {\n  rankdir=LR;\n  node [fontsize=10];\n");
    let namer = provdb::query::Namer::new(g)?;
    for v in &sub.vertices {
        let name = namer.name_of(v.id)?;
        s.push_str(&format!(
            "  v{} [label=\"{}\", shape={}, tooltip=\"{}\"];\n",
            v.id.0,
            dot_escape(&vertex_label(v, name)),
            shape(&v.type_name),
            dot_escape(&v.ext_id.to_string())
        ));
    }
    for e in &sub.edges {
        s.push_str(&format!(
            "  v{} -> v{} [label=\"{}\"];\n",
            e.src.0,
            e.dst.0,
            dot_escape(&e.type_name)
        ));
    }
    s.push_str("}\n");
    Ok(s)
}

/// Renders DOT text to an SVG file with Graphviz's `dot`.
pub fn write_svg(dot: &str, path: &std::path::Path) -> anyhow::Result<()> {
    use std::process::{Command, Stdio};
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .arg("-o")
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!("cannot run Graphviz `dot` ({e}); install graphviz or use --format dot")
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(dot.as_bytes())?;
    }
    let status = child.wait()?;
    if !status.success() {
        anyhow::bail!("Graphviz `dot` failed ({status})");
    }
    Ok(())
}
