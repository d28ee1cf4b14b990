//! `serve`: the actor tree for the configured services, the projector, and the HTTP API.

use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actors::execution::SimulatedCluster;
use actors::supervisor::{RootSupervisor, StartService};
use actors::{ReconcileSettings, ServiceContext, StatusBoard, SystemClock};
use anyhow::Context as _;
use events::projections::Projector;

use crate::api::{self, AppState};
use crate::backend::Backend;
use crate::config::Settings;

/// Runs until the HTTP server stops (SIGINT/SIGTERM).
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let backend = Backend::connect(&settings.database.url)
        .await
        .with_context(|| format!("connecting to {}", redact(&settings.database.url)))?;
    let backend = backend.with_cache(
        crate::cache::from_settings(&settings.redis.url)
            .await
            .context("connecting to redis.url")?,
    );
    let _projector = Projector::spawn(
        backend.store.clone(),
        backend.models.clone(),
        Duration::from_millis(500),
    );
    let clock = Arc::new(SystemClock);
    let root = RootSupervisor::default().start();
    let cluster = scale_target(&settings, clock.clone()).await?;
    let status = StatusBoard::default();
    let reconcile = ReconcileSettings {
        timer: true,
        ..settings.reconcile.clone()
    };
    for service in &settings.services {
        let ctx = ServiceContext {
            service: service.clone(),
            store: backend.store.clone(),
            metrics: backend.metrics.clone(),
            clock: clock.clone(),
            target: cluster.clone(),
            forecast: settings.models.clone(),
            policy: settings.scaling.clone(),
            reconcile: reconcile.clone(),
            ingest: settings.ingest_limits(),
            status: status.clone(),
        };
        root.send(StartService(ctx)).await??;
    }
    retention_task(backend.clone(), settings.database.metrics_retention_days);
    let _relay = (!settings.kafka.brokers.trim().is_empty())
        .then(|| -> anyhow::Result<_> {
            let sink = events::relay::KafkaSink::new(&settings.kafka.brokers, &settings.kafka.events_topic)?;
            tracing::info!(brokers = %settings.kafka.brokers, topic = %settings.kafka.events_topic, "relaying events to kafka");
            Ok(events::relay::spawn_relay(
                backend.store.clone(),
                backend.models.clone(),
                Arc::new(sink),
                "relay:kafka",
                Duration::from_millis(500),
            ))
        })
        .transpose()?;
    let state = AppState {
        backend,
        root: Some(root),
        status,
        prometheus: crate::telemetry::prometheus(),
        max_projection_lag: 100,
    };
    tracing::info!(
        bind = %settings.http.bind,
        services = ?settings.services,
        model = %settings.models.model,
        model_dir = %settings.models.model_dir.display(),
        "serving"
    );
    actix_web::HttpServer::new(move || api::app(state.clone()))
        .bind(&settings.http.bind)
        .with_context(|| format!("binding http.bind = {}", settings.http.bind))?
        .run()
        .await?;
    Ok(())
}

/// The scale target `execution.target` names.
async fn scale_target(
    settings: &Settings,
    clock: Arc<SystemClock>,
) -> anyhow::Result<Arc<dyn actors::execution::ScaleTarget>> {
    match settings.execution.target.as_str() {
        #[cfg(feature = "kubernetes")]
        "kubernetes" => {
            let k = &settings.kubernetes;
            let t = actors::execution::KubernetesTarget::connect(&k.namespace, k.in_cluster, &k.kubeconfig).await?;
            Ok(Arc::new(t))
        }
        _ => {
            let mut cluster = SimulatedCluster::new(clock, chrono::Duration::seconds(settings.scaling.warmup_s));
            for s in &settings.services {
                cluster = cluster.with_service(s, settings.execution.initial_replicas);
            }
            Ok(Arc::new(cluster))
        }
    }
}

/// Deletes metrics past the retention period once an hour.
fn retention_task(backend: Backend, days: u32) {
    actix::spawn(async move {
        loop {
            let cutoff = chrono::Utc::now() - chrono::Duration::days(days as i64);
            match backend.metrics.apply_retention(cutoff).await {
                Ok(n) if n > 0 => tracing::info!(removed = n, "metrics retention"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "metrics retention failed"),
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..s], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}
