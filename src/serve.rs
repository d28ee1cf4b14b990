//! `serve`: the actor tree for the configured services, the projector, and the HTTP API.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use actors::execution::{ScaleTarget, SimulatedCluster};
use actors::supervisor::{RootSupervisor, StartService, StopService};
use actors::{ReconcileSettings, ServiceContext, StatusBoard, SystemClock};
use anyhow::Context as _;
use events::projections::Projector;

use crate::api::{self, AppState};
use crate::backend::Backend;
use crate::config::Settings;
use crate::services::ServicePlan;

/// Runs until the HTTP server stops (SIGINT/SIGTERM). On SIGHUP it reads the configuration
/// again (`config_file` and the environment) and starts, stops or restarts services to match.
pub async fn run(settings: Settings, config_file: Option<PathBuf>) -> anyhow::Result<()> {
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
    let runtime = Runtime {
        root: RootSupervisor::default().start(),
        backend: backend.clone(),
        clock: clock.clone(),
        target: scale_target(&settings, clock).await?,
        status: StatusBoard::default(),
        running: BTreeMap::new(),
    };
    let (root, status) = (runtime.root.clone(), runtime.status.clone());
    let runtime = Arc::new(tokio::sync::Mutex::new(runtime));
    runtime.lock().await.apply(&settings).await?;
    reload_on_hangup(runtime.clone(), config_file);
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
        services = ?settings.service_names(),
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

/// The services this process runs, as configured.
struct Runtime {
    root: Addr<RootSupervisor>,
    backend: Backend,
    clock: Arc<SystemClock>,
    target: Target,
    status: StatusBoard,
    running: BTreeMap<String, ServicePlan>,
}

/// The scale target, and the simulated cluster behind it when that is the one configured
/// (services added at run time are registered with it).
struct Target {
    target: Arc<dyn ScaleTarget>,
    simulated: Option<Arc<SimulatedCluster>>,
}

impl Runtime {
    /// Starts the configured services that do not run, stops those no longer configured, and
    /// restarts those whose plan changed (their state is folded from the log again).
    async fn apply(&mut self, settings: &Settings) -> anyhow::Result<()> {
        let plans = crate::services::plans(settings)?;
        let wanted: BTreeMap<String, ServicePlan> = plans.into_iter().map(|p| (p.name.clone(), p)).collect();
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(name, plan)| wanted.get(*name) != Some(*plan))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            self.root.send(StopService(name.clone())).await?;
            self.running.remove(&name);
        }
        let reconcile = ReconcileSettings {
            timer: true,
            ..settings.reconcile.clone()
        };
        for (name, plan) in wanted {
            if self.running.contains_key(&name) {
                continue;
            }
            if let Some(sim) = &self.target.simulated {
                sim.add_service(&name, plan.initial_replicas);
            }
            let ctx = ServiceContext {
                service: name.clone(),
                store: self.backend.store.clone(),
                metrics: self.backend.metrics.clone(),
                clock: self.clock.clone(),
                target: self.target.target.clone(),
                forecast: plan.forecast.clone(),
                policy: plan.policy.clone(),
                reconcile: reconcile.clone(),
                ingest: settings.ingest_limits(),
                status: self.status.clone(),
            };
            self.root.send(StartService(ctx)).await??;
            tracing::info!(service = %name, "service started");
            self.running.insert(name, plan);
        }
        Ok(())
    }
}

/// SIGHUP: read the configuration again and apply it; a configuration that does not load is
/// logged and changes nothing.
fn reload_on_hangup(runtime: Arc<tokio::sync::Mutex<Runtime>>, file: Option<PathBuf>) {
    #[cfg(unix)]
    actix::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: configuration reload disabled");
            return;
        };
        while hup.recv().await.is_some() {
            let applied = match Settings::load(file.as_deref()) {
                Ok(settings) => runtime.lock().await.apply(&settings).await,
                Err(e) => Err(e.into()),
            };
            match applied {
                Ok(()) => tracing::info!("configuration reloaded"),
                Err(e) => tracing::error!(error = %e, "configuration not reloaded; the running services are unchanged"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (runtime, file);
}

/// The scale target `execution.target` names.
async fn scale_target(settings: &Settings, clock: Arc<SystemClock>) -> anyhow::Result<Target> {
    match settings.execution.target.as_str() {
        #[cfg(feature = "kubernetes")]
        "kubernetes" => {
            let k = &settings.kubernetes;
            let t = actors::execution::KubernetesTarget::connect(&k.namespace, k.in_cluster, &k.kubeconfig).await?;
            Ok(Target {
                target: Arc::new(t),
                simulated: None,
            })
        }
        _ => {
            let cluster = Arc::new(SimulatedCluster::new(
                clock,
                chrono::Duration::seconds(settings.scaling.warmup_s),
            ));
            Ok(Target {
                target: cluster.clone(),
                simulated: Some(cluster),
            })
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
