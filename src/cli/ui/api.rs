//! The HTTP routes: the page's assets and the read-only JSON API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use provdb::detect::{AlertFilter, Severity};
use provdb::query::{Cursor, QueryError, QueryResult};
use provdb::ExternalId;
use serde_json::{json, Value as JsonValue};

use super::graph_json::{self, MAX_ADJACENT};
use super::security::{Access, Verdict};
use super::UiState;
use crate::cli::render::{self, Format};

/// The longest query text taken (a query is a line or a few; this bounds parsing work).
const MAX_QUERY_BYTES: usize = 16 << 10;
/// The largest request body (the export's list of ids).
const MAX_BODY_BYTES: usize = 4 << 20;
/// Ids one export may name.
const MAX_EXPORT_IDS: usize = 100_000;
/// Quarantined messages listed (the newest).
const MAX_QUARANTINE_LISTED: usize = 200;

/// Only the page's own script runs; inline styles are allowed for the graph's SVG, which
/// carries its style sheet so that an exported file looks as it does on screen.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: blob:; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const FAVICON_SVG: &str = include_str!("assets/favicon.svg");

/// Why a request failed, as the JSON body `{error, message, ...}` with its status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The query does not parse, names unknown things, or the storage failed under it.
    #[error("{0}")]
    Query(#[from] QueryError),
    /// A parameter is missing or malformed.
    #[error("{0}")]
    BadRequest(String),
    /// No such vertex or alert.
    #[error("{0}")]
    NotFound(String),
    /// Reading the archive failed.
    #[error("{0}")]
    Internal(String),
}

impl From<provdb::Error> for ApiError {
    fn from(e: provdb::Error) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::Internal(format!("{e:#}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::Query(e) => {
                let status = if e.kind() == provdb::query::ErrorKind::Storage {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::BAD_REQUEST
                };
                let loc = e.location();
                (
                    status,
                    json!({
                        "error": e.to_string(),
                        "message": e.message(),
                        "help": e.help(),
                        "line": loc.map(|l| l.line),
                        "column": loc.map(|l| l.column),
                        "width": loc.map(|l| l.width),
                        "line_text": loc.map(|l| l.line_text.as_str()),
                    }),
                )
            }
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({"error": m, "message": m})),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, json!({"error": m, "message": m})),
            ApiError::Internal(m) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": m, "message": m}),
            ),
        };
        (status, Json(body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// Every route, behind the access check, with bounded request bodies.
pub fn router(state: Arc<UiState>, access: Access) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/favicon.svg",
            get(|| async { asset(FAVICON_SVG, "image/svg+xml") }),
        )
        .route("/api/query", get(query))
        .route("/api/graph", get(graph))
        .route("/api/vertex/:id", get(vertex))
        .route("/api/alerts", get(alerts))
        .route("/api/alerts/:id", get(alert))
        .route("/api/machines", get(machines))
        .route("/api/events", get(events))
        .route("/api/export/prov-json", post(export_prov_json))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(access, guard))
        .with_state(state)
}

fn asset(text: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

/// Access check first; then headers that keep the page from loading anything but itself.
async fn guard(State(access): State<Access>, req: Request, next: Next) -> Response {
    let verdict = {
        let headers = req.headers();
        let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        access.check(text(header::HOST), text(header::AUTHORIZATION))
    };
    match verdict {
        Verdict::Allowed => {}
        Verdict::NeedsPassword => {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"provdb\"")],
                "authentication required\n",
            )
                .into_response()
        }
        Verdict::ForeignHost => {
            return (
                StatusCode::FORBIDDEN,
                "this server answers only to a loopback host name (localhost, 127.0.0.1)\n",
            )
                .into_response()
        }
    }
    // A body declared over the limit is refused before a byte of it is read (the limit
    // layer also stops a body that is longer than declared, or not declared).
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"error": format!("request bodies are at most {MAX_BODY_BYTES} bytes")})),
        )
            .into_response();
    }
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The `q` parameter, bounded.
fn query_param(params: &HashMap<String, String>) -> Result<String, ApiError> {
    let q = params
        .get("q")
        .ok_or_else(|| ApiError::BadRequest("missing parameter q (the query)".into()))?;
    if q.len() > MAX_QUERY_BYTES {
        return Err(ApiError::BadRequest(format!(
            "the query is {} bytes, over the limit of {MAX_QUERY_BYTES}",
            q.len()
        )));
    }
    Ok(q.clone())
}

/// Runs `work` on a blocking thread once a query slot is free.
async fn blocking<T: Send + 'static>(
    state: &Arc<UiState>,
    work: impl FnOnce(&UiState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let _slot = state
        .query_slots
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let s = state.clone();
    tokio::task::spawn_blocking(move || work(&s))
        .await
        .map_err(|e| ApiError::Internal(format!("the query thread failed: {e}")))?
}

/// A query run as `provdb query` runs it (same text handling, same guards).
fn run_query(state: &UiState, text: &str) -> Result<QueryResult, ApiError> {
    let cursor = Cursor::new(
        state.db.store(),
        crate::cli::query::query_text(text),
        state.limits.clone(),
    )?;
    Ok(cursor.collect_result()?)
}

/// `GET /api/query?q=`: exactly `provdb query --format json`'s output; guard warnings in the
/// `X-Provdb-Warnings` header (a JSON array of strings).
async fn query(
    State(state): State<Arc<UiState>>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    let text = query_param(&params)?;
    let (body, warnings) = blocking(&state, move |s| {
        let result = run_query(s, &text)?;
        let mut body = Vec::new();
        render::render(&mut body, s.db.store(), &result, Format::Json, None)?;
        let warnings: Vec<String> = result.warnings.iter().map(|w| w.to_string()).collect();
        Ok((body, warnings))
    })
    .await?;
    let mut response = (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&json!(warnings).to_string()) {
        response.headers_mut().insert("x-provdb-warnings", v);
    }
    Ok(response)
}

/// `GET /api/graph?q=`: the page's view of a query: columns, rows (arrays), warnings and the
/// matched subgraph.
async fn graph(
    State(state): State<Arc<UiState>>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    let text = query_param(&params)?;
    let body = blocking(&state, move |s| {
        let started = Instant::now();
        let result = run_query(s, &text)?;
        let rows: Vec<JsonValue> = result
            .rows
            .iter()
            .map(|r| JsonValue::Array(r.values.iter().map(render::datum_json).collect()))
            .collect();
        let mut out = graph_json::subgraph_json(s.db.store(), &result)?;
        out["columns"] = json!(result.columns);
        out["rows"] = JsonValue::Array(rows);
        out["warnings"] = json!(result
            .warnings
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>());
        out["elapsed_ms"] = json!(started.elapsed().as_secs_f64() * 1000.0);
        Ok(out)
    })
    .await?;
    Ok(Json(body).into_response())
}

/// `GET /api/vertex/ID`: attributes and adjacent edges (ID external, `cf:` optional).
async fn vertex(State(state): State<Arc<UiState>>, Path(id): Path<String>) -> ApiResult {
    if id.len() > 256 {
        return Err(ApiError::BadRequest(
            "a vertex id is at most 256 bytes".into(),
        ));
    }
    let body = blocking(&state, move |s| {
        let Some(v) = s.db.vertex_by_external(&id)? else {
            return Err(ApiError::NotFound(format!("no vertex {id}")));
        };
        Ok(graph_json::vertex_detail_json(
            s.db.store(),
            &v,
            MAX_ADJACENT,
        )?)
    })
    .await?;
    Ok(Json(body).into_response())
}

/// An alert as `provdb alerts --format json` prints it, with its count and last time seen.
fn alert_json(a: &provdb::detect::Alert) -> JsonValue {
    let mut v = a.to_json();
    v["count"] = json!(a.count);
    v["last_seen"] = graph_json::time_json(a.last_seen);
    v
}

/// `GET /api/alerts[?since=24h&machine=M&rule=R&severity=high]`.
async fn alerts(
    State(state): State<Arc<UiState>>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    let filter = AlertFilter {
        since: params
            .get("since")
            .filter(|s| !s.is_empty())
            .map(|s| crate::cli::alerts::parse_since(s))
            .transpose()
            .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        machine: params
            .get("machine")
            .filter(|s| !s.is_empty())
            .map(|m| {
                m.parse::<u32>()
                    .map_err(|_| ApiError::BadRequest(format!("machine `{m}`: a number")))
            })
            .transpose()?,
        rule: params.get("rule").filter(|s| !s.is_empty()).cloned(),
        min_severity: params
            .get("severity")
            .filter(|s| !s.is_empty())
            .map(|s| {
                Severity::parse(s).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "unknown severity `{s}`: low, medium, high or critical"
                    ))
                })
            })
            .transpose()?,
    };
    let body = blocking(&state, move |s| {
        let list = s.db.alerts(&filter)?;
        Ok(JsonValue::Array(list.iter().map(alert_json).collect()))
    })
    .await?;
    Ok(Json(body).into_response())
}

/// `GET /api/alerts/ID`: the alert and the graph of its path (`on_path`) with the
/// neighbourhood that explains it (as `alerts show --svg` draws it).
async fn alert(State(state): State<Arc<UiState>>, Path(id): Path<String>) -> ApiResult {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("alert id `{id}`: a number")))?;
    let body = blocking(&state, move |s| {
        let Some(a) = s.db.alert(id)? else {
            return Err(ApiError::NotFound(format!("no alert {id}")));
        };
        let store = s.db.store();
        let namer = provdb::query::Namer::new(store)?;
        let mut vertices = Vec::new();
        for p in &a.path {
            let mut v = match s.db.vertex_by_external(&p.id)? {
                Some(v) => graph_json::vertex_json(&v, p.name.clone()),
                None => json!({"id": p.id, "type": p.type_name, "name": p.name}),
            };
            v["on_path"] = json!(true);
            vertices.push(v);
        }
        let mut edges: Vec<JsonValue> = a
            .edges
            .iter()
            .map(|e| {
                let mut j = match s.db.edge_by_external(&e.id).ok().flatten() {
                    Some(edge) => graph_json::edge_json(&edge, &e.from, &e.to),
                    None => json!({"id": e.id, "type": e.type_name, "from": e.from, "to": e.to}),
                };
                j["on_path"] = json!(true);
                j
            })
            .collect();
        for n in crate::cli::alerts::alert_neighbourhood(&s.db, &a)? {
            if n.first_sight {
                vertices.push(graph_json::vertex_json(
                    &n.neighbour,
                    namer.name_of(n.neighbour.id)?,
                ));
            }
            edges.push(json!({
                "id": n.edge, "type": n.edge_type, "from": n.from, "to": n.to,
            }));
        }
        let mut out = alert_json(&a);
        out["graph"] = json!({ "vertices": vertices, "edges": edges });
        Ok(out)
    })
    .await?;
    Ok(Json(body).into_response())
}

/// `GET /api/machines`: the registry (as `machines --json`) and the newest quarantined
/// messages (without payloads) with their total.
async fn machines(State(state): State<Arc<UiState>>) -> ApiResult {
    let body = blocking(&state, move |s| {
        let machines = provdb::ingest::load_machines(s.db.store())?;
        let quarantine = provdb::ingest::load_quarantine(s.db.store())?;
        let skip = quarantine.len().saturating_sub(MAX_QUARANTINE_LISTED);
        Ok(json!({
            "machines": machines.iter().map(crate::cli::machines::machine_json).collect::<Vec<_>>(),
            "quarantine_total": quarantine.len(),
            "quarantine": quarantine[skip..].iter().map(crate::cli::quarantine::entry_json).collect::<Vec<_>>(),
        }))
    })
    .await?;
    Ok(Json(body).into_response())
}

/// `GET /api/events`: server-sent events, a `change` (data: the archive's write sequence
/// number) each time a catch-up finds the archive changed, so that the page refreshes its
/// alerts and machines when there is something new instead of polling; a comment every 15 s
/// keeps the connection open through proxies. The stream ends when the server stops.
async fn events(State(state): State<Arc<UiState>>) -> Response {
    let changes = state.changes.subscribe();
    let stopping = state.stopping.subscribe();
    let stream = futures_util::stream::unfold(
        (changes, stopping),
        |(mut changes, mut stopping)| async move {
            tokio::select! {
                changed = changes.changed() => changed.ok()?,
                _ = stopping.wait_for(|stop| *stop) => return None,
            }
            let sequence = *changes.borrow_and_update();
            let event = Event::default().event("change").data(sequence.to_string());
            Some((
                Ok::<_, std::convert::Infallible>(event),
                (changes, stopping),
            ))
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `POST /api/export/prov-json` with `{"vertices": [ID...], "edges": [ID...]}`: those vertices
/// and edges (and the edges' ends) as one W3C PROV-JSON document, as `provdb export` writes it.
async fn export_prov_json(State(state): State<Arc<UiState>>, body: axum::body::Bytes) -> ApiResult {
    let request: JsonValue = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let ids = |key: &str| -> Result<Vec<String>, ApiError> {
        let list = match request.get(key) {
            None => return Ok(Vec::new()),
            Some(JsonValue::Array(list)) => list,
            Some(_) => return Err(ApiError::BadRequest(format!("`{key}`: an array of ids"))),
        };
        if list.len() > MAX_EXPORT_IDS {
            return Err(ApiError::BadRequest(format!(
                "`{key}`: at most {MAX_EXPORT_IDS} ids"
            )));
        }
        list.iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::BadRequest(format!("`{key}`: ids are strings")))
            })
            .collect()
    };
    let (vertex_ids, edge_ids) = (ids("vertices")?, ids("edges")?);
    let document = blocking(&state, move |s| {
        let store = s.db.store();
        let internal = |ids: &[String], edge: bool| -> Result<Vec<u64>, ApiError> {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let ext = ExternalId::parse(id);
                let found = if edge {
                    store.edge_id(&ext).map(|e| e.map(|e| e.0))
                } else {
                    store.vertex_id(&ext).map(|v| v.map(|v| v.0))
                };
                out.extend(found.map_err(provdb::Error::from)?);
            }
            Ok(out)
        };
        let (vertices, edges) = (internal(&vertex_ids, false)?, internal(&edge_ids, true)?);
        let mut out = Vec::new();
        provdb::export::export(
            store,
            &provdb::export::ExportSelection::Ids { vertices, edges },
            provdb::export::ExportFormat::ProvJson,
            &mut out,
            &mut |_| {},
        )?;
        Ok(out)
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"provdb-graph.prov.json\"",
            ),
        ],
        Body::from(document),
    )
        .into_response())
}
