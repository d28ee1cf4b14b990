//! Wiring of the storage backend chosen by `database.url`: SQLite (embedded
//! default) or PostgreSQL; each adapter serves the log, the read models and the metrics.

use std::sync::Arc;

use events::metrics::MetricStore;
use events::projections::ReadModelStore;
use events::store::{postgres::PgStore, sqlite::SqliteStore};
use events::{EventStore, StoreError};

use crate::cache::{Cache, MemoryCache};

/// The three ports, backed by one database.
#[derive(Clone)]
pub struct Backend {
    pub store: Arc<dyn EventStore>,
    pub models: Arc<dyn ReadModelStore>,
    pub metrics: Arc<dyn MetricStore>,
    /// `sqlite` or `postgres`.
    pub kind: &'static str,
    /// The read cache: in-process unless [`Backend::with_cache`] sets another (Redis).
    pub cache: Arc<dyn Cache>,
}

impl Backend {
    /// Connects and migrates. A SQLite file's folder is created if missing.
    pub async fn connect(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("postgres") {
            let s = Arc::new(PgStore::connect(url).await?);
            Ok(Backend {
                store: s.clone(),
                models: s.clone(),
                metrics: s,
                kind: "postgres",
                cache: memory_cache(),
            })
        } else {
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            if let Some(dir) = std::path::Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
            }
            let s = Arc::new(SqliteStore::connect(url).await?);
            Ok(Backend {
                store: s.clone(),
                models: s.clone(),
                metrics: s,
                kind: "sqlite",
                cache: memory_cache(),
            })
        }
    }
}

fn memory_cache() -> Arc<dyn Cache> {
    Arc::new(MemoryCache::default())
}

impl Backend {
    /// The same backend with another read cache.
    pub fn with_cache(self, cache: Arc<dyn Cache>) -> Backend {
        Backend { cache, ..self }
    }
}
