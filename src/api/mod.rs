//! The HTTP API (actix-web): health, Prometheus metrics, and the read models.
//!
//! Reads come from the projections, never from actor state; writes
//! (approve, reject, ingest) are messages to the service's actors.

mod error;

use std::time::Instant;

use actix::Addr;
use actix_web::dev::Service;
use actix_web::{HttpResponse, web};
use actors::messages::{Approve, Ingested, Reject, Sample};
use actors::supervisor::{Lookup, RootSupervisor, ServiceActors};
use chrono::{DateTime, Utc};
use events::projections::{DocQuery, PROJECTION, Val};
use events::{EventJson, streams};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

pub use error::ApiError;

use crate::backend::Backend;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub backend: Backend,
    /// The actor tree, when this process runs one (`serve`); read-only otherwise.
    pub root: Option<Addr<RootSupervisor>>,
    /// Readiness and last evaluation of the actors this process runs.
    pub status: actors::StatusBoard,
    pub prometheus: PrometheusHandle,
    /// Most events the read models may lag behind the log and still be ready.
    pub max_projection_lag: u64,
}

/// How long a cached read may be served.
const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Longest the readiness probe waits for the store.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Largest JSON body of the write routes that take one sample or one verdict.
pub const SMALL_BODY: usize = 16 * 1024;

/// How JSON bodies and query strings that cannot be read are answered: 413 for a body over
/// its route's limit, 400 naming the problem otherwise.
fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).error_handler(|e, _| match e {
        actix_web::error::JsonPayloadError::Overflow { limit }
        | actix_web::error::JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::TooLarge(format!("the body is larger than the {limit} bytes this route accepts")).into()
        }
        other => ApiError::BadRequest(other.to_string()).into(),
    })
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| ApiError::BadRequest(e.to_string()).into()))
        .app_data(json_config(SMALL_BODY))
        .route("/health", web::get().to(health))
        .route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(prometheus))
        .service(
            web::scope("/api/v1")
                .route("/predictions/current", web::get().to(current_predictions))
                .route("/scaling/decisions", web::get().to(list_decisions))
                .route("/scaling/decisions/{id}", web::get().to(get_decision))
                .route("/scaling/decisions/{id}/approve", web::post().to(approve))
                .route("/scaling/decisions/{id}/reject", web::post().to(reject))
                .route("/scaling/status", web::get().to(status))
                .route("/metrics", web::post().to(ingest))
                .route("/audit/events", web::get().to(audit)),
        );
}

/// Builds the app with the request counter middleware.
pub fn app(
    state: AppState,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<actix_web::body::BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .app_data(web::Data::new(state))
        .wrap_fn(|req, srv| {
            let method = req.method().to_string();
            let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
            let started = Instant::now();
            let fut = srv.call(req);
            async move {
                let res = fut.await?;
                metrics::counter!("pscaler_http_requests_total", "method" => method, "route" => route,
                    "status" => res.status().as_u16().to_string())
                .increment(1);
                metrics::histogram!("pscaler_http_request_seconds").record(started.elapsed().as_secs_f64());
                Ok(res)
            }
        })
        .configure(configure)
}

async fn health(s: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "store": s.backend.kind}))
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "alive"}))
}

/// Ready when the store answers, the read models are caught up with the log, and every
/// actor of this process has rebuilt its state.
async fn ready(s: web::Data<AppState>) -> HttpResponse {
    let within =
        |what| events::StoreError::Invalid(format!("the store did not answer {what} within {READY_TIMEOUT:?}"));
    let head = tokio::time::timeout(READY_TIMEOUT, s.backend.store.head())
        .await
        .unwrap_or_else(|_| Err(within("the head")));
    let checkpoint = tokio::time::timeout(READY_TIMEOUT, s.backend.models.checkpoint(PROJECTION))
        .await
        .unwrap_or_else(|_| Err(within("the checkpoint")));
    let not_ready = s.status.not_ready();
    match (head, checkpoint) {
        (Ok(head), Ok(cp)) => {
            let lag = head.saturating_sub(cp);
            metrics::gauge!("pscaler_projection_lag_events", "projection" => PROJECTION).set(lag as f64);
            let body = json!({"store": "ok", "log_head": head, "projection_checkpoint": cp,
                              "projection_lag": lag, "services_not_ready": not_ready});
            if lag <= s.max_projection_lag && not_ready.is_empty() {
                HttpResponse::Ok().json(body)
            } else {
                HttpResponse::ServiceUnavailable().json(body)
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "readiness: store unavailable");
            HttpResponse::ServiceUnavailable().json(json!({"store": "unavailable", "services_not_ready": not_ready}))
        }
    }
}

async fn prometheus(s: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(s.prometheus.render())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFilter {
    service: Option<String>,
}

async fn current_predictions(s: web::Data<AppState>, q: web::Query<ServiceFilter>) -> Result<HttpResponse, ApiError> {
    let mut query = DocQuery::new("current_predictions", "service").ascending().limit(1000);
    if let Some(svc) = &q.service {
        query = query.filter("service", Val::Text(svc.clone()));
    }
    let key = format!("predictions/current/{}", q.service.as_deref().unwrap_or("*"));
    if let Ok(Some(hit)) = s.backend.cache.get(&key).await {
        return Ok(HttpResponse::Ok()
            .content_type("application/json")
            .insert_header(("x-cache", "hit"))
            .body(hit));
    }
    let body = json!({"predictions": s.backend.models.query(&query).await?}).to_string();
    if let Err(e) = s.backend.cache.set(&key, &body, CACHE_TTL).await {
        tracing::warn!(error = %e, "cache unavailable; serving from the read models");
    }
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("x-cache", "miss"))
        .body(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionFilter {
    service: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list_decisions(s: web::Data<AppState>, q: web::Query<DecisionFilter>) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} must be between 1 and 1000"
        )));
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::BadRequest(format!("offset {offset} must not be negative")));
    }
    let mut query = DocQuery::new("scaling_decisions", "proposed_at")
        .limit(limit)
        .offset(offset);
    if let Some(svc) = &q.service {
        query = query.filter("service", Val::Text(svc.clone()));
    }
    if let Some(st) = &q.status {
        query = query.filter("status", Val::Text(st.clone()));
    }
    let docs = s.backend.models.query(&query).await?;
    Ok(HttpResponse::Ok().json(json!({"decisions": docs, "limit": limit, "offset": offset})))
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::BadRequest(format!("`{raw}` is not a decision id (a UUID)")))
}

async fn find_decision(s: &AppState, id: Uuid) -> Result<serde_json::Value, ApiError> {
    let docs = s
        .backend
        .models
        .query(
            &DocQuery::new("scaling_decisions", "proposed_at")
                .filter("decision_id", Val::Uuid(id))
                .limit(1),
        )
        .await?;
    docs.into_iter()
        .next()
        .ok_or_else(|| ApiError::NotFound(format!("no decision {id}")))
}

async fn get_decision(s: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let doc = find_decision(&s, id).await?;
    let history: Vec<EventJson> = s
        .backend
        .store
        .read_stream(&streams::decision(id), 0)
        .await?
        .iter()
        .map(EventJson::from)
        .collect();
    Ok(HttpResponse::Ok().json(json!({"decision": doc, "events": history})))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Verdict {
    #[serde(alias = "approved_by", alias = "rejected_by")]
    by: Option<String>,
    #[serde(alias = "comment")]
    reason: Option<String>,
}

async fn service_actors(s: &AppState, doc: &serde_json::Value) -> Result<ServiceActors, ApiError> {
    let root = s
        .root
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("no actors run in this process".into()))?;
    let service = doc["service"].as_str().unwrap_or_default().to_string();
    root.send(Lookup(service.clone()))
        .await?
        .ok_or_else(|| ApiError::Unavailable(format!("service `{service}` is not run by this process")))
}

async fn approve(
    s: web::Data<AppState>,
    id: web::Path<String>,
    body: Option<web::Json<Verdict>>,
) -> Result<HttpResponse, ApiError> {
    verdict(&s, &id, body, true).await
}

async fn reject(
    s: web::Data<AppState>,
    id: web::Path<String>,
    body: Option<web::Json<Verdict>>,
) -> Result<HttpResponse, ApiError> {
    verdict(&s, &id, body, false).await
}

/// A person's approval or rejection, sent to the decision actor of the decision's service.
async fn verdict(
    s: &AppState,
    raw_id: &str,
    body: Option<web::Json<Verdict>>,
    approve: bool,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(raw_id)?;
    let doc = find_decision(s, id).await?;
    let decision = service_actors(s, &doc).await?.decision;
    let v = body.map(|b| b.into_inner()).unwrap_or_default();
    let by = v.by.unwrap_or_else(|| "api".into());
    let (status, by_key) = if approve {
        let msg = Approve {
            decision_id: id,
            by: by.clone(),
            comment: v.reason,
        };
        decision.send(msg).await??;
        ("approved", "approved_by")
    } else {
        let msg = Reject {
            decision_id: id,
            by: by.clone(),
            reason: v.reason,
        };
        decision.send(msg).await??;
        ("rejected", "rejected_by")
    };
    Ok(HttpResponse::Ok().json(json!({"decision_id": id, "status": status, by_key: by})))
}

/// Per service: the replicas the log last recorded, why it last held (`DecisionHeld`) and
/// the live status of its control loop (ready, last evaluation, forecast problem).
async fn status(s: web::Data<AppState>, q: web::Query<ServiceFilter>) -> Result<HttpResponse, ApiError> {
    let mut state = DocQuery::new("service_state", "service").ascending().limit(1000);
    let mut holds = DocQuery::new("service_holds", "service").ascending().limit(1000);
    if let Some(svc) = &q.service {
        state = state.filter("service", Val::Text(svc.clone()));
        holds = holds.filter("service", Val::Text(svc.clone()));
    }
    let live = s.status.snapshot();
    let mut out: std::collections::BTreeMap<String, serde_json::Value> = std::collections::BTreeMap::new();
    for doc in s.backend.models.query(&state).await? {
        let name = doc["service"].as_str().unwrap_or_default().to_string();
        out.entry(name).or_insert_with(|| json!({}))["state"] = doc;
    }
    for doc in s.backend.models.query(&holds).await? {
        let name = doc["service"].as_str().unwrap_or_default().to_string();
        out.entry(name).or_insert_with(|| json!({}))["hold"] = doc;
    }
    for (name, st) in live.iter().filter(|(n, _)| q.service.as_ref().is_none_or(|f| f == *n)) {
        out.entry(name.clone()).or_insert_with(|| json!({}))["live"] = json!({"ready": st.ready(), "status": st});
    }
    let services: Vec<serde_json::Value> = out
        .into_iter()
        .map(|(name, mut v)| {
            v["service"] = json!(name);
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"services": services})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestBody {
    service: String,
    timestamp: DateTime<Utc>,
    value: f64,
}

/// Ingests one load sample (for testing and for push-based sources).
async fn ingest(s: web::Data<AppState>, body: web::Json<IngestBody>) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let root = s
        .root
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("no actors run in this process".into()))?;
    let actors = root
        .send(Lookup(b.service.clone()))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("service `{}` is not run by this process", b.service)))?;
    let outcome = actors
        .ingest
        .send(Sample {
            ts: b.timestamp,
            value: b.value,
        })
        .await??;
    let accepted = usize::from(!matches!(outcome, Ingested::Quarantined { .. }));
    Ok(HttpResponse::Accepted().json(json!({"accepted": accepted, "result": outcome})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    stream: Option<String>,
    from: Option<u64>,
    limit: Option<usize>,
}

/// The raw log: everything after position `from`, or one stream after version `from`.
async fn audit(s: web::Data<AppState>, q: web::Query<AuditQuery>) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(500);
    if !(1..=5000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} must be between 1 and 5000"
        )));
    }
    let from = q.from.unwrap_or(0);
    let events = match &q.stream {
        Some(stream) if stream.is_empty() => return Err(ApiError::BadRequest("stream must not be empty".into())),
        Some(stream) => s.backend.store.read_stream_page(stream, from, limit).await?,
        None => s.backend.store.read_all(from, limit).await?,
    };
    let out: Vec<EventJson> = events.iter().map(EventJson::from).collect();
    Ok(HttpResponse::Ok().json(json!({"events": out})))
}
