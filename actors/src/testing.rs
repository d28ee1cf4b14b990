//! Fixture builders for tests of the actors (here and in the workspace's integration tests):
//! one place that knows how to assemble a service's context with test defaults.

use std::sync::Arc;

use events::EventStore;
use events::metrics::MetricStore;

use crate::clock::Clock;
use crate::context::{ForecastSettings, IngestLimits, ReconcileSettings, ServiceContext};
use crate::decision::ScalingPolicy;
use crate::execution::ScaleTarget;
use crate::status::StatusBoard;

/// A context for `service` with default settings, to be adjusted field by field.
pub fn context(
    service: &str,
    store: Arc<dyn EventStore>,
    metrics: Arc<dyn MetricStore>,
    clock: Arc<dyn Clock>,
    target: Arc<dyn ScaleTarget>,
) -> ServiceContext {
    ServiceContext {
        service: service.to_string(),
        store,
        metrics,
        clock,
        target,
        forecast: ForecastSettings::default(),
        policy: ScalingPolicy::default(),
        reconcile: ReconcileSettings::default(),
        ingest: IngestLimits {
            // tests replay traces from years ago in virtual time
            max_age_s: i64::MAX / 4,
            ..IngestLimits::default()
        },
        status: StatusBoard::default(),
    }
}

/// An event store that passes everything to another one, and can be told to fail: the
/// next appends that touch a stream with a given prefix (`StoreError::Invalid("injected
/// fault")`, nothing appended), or every read and append while "down".
pub struct FlakyStore {
    inner: Arc<dyn EventStore>,
    fail_appends: std::sync::Mutex<Option<(String, u32)>>,
    down: std::sync::atomic::AtomicBool,
}

impl FlakyStore {
    pub fn new(inner: Arc<dyn EventStore>) -> Self {
        FlakyStore {
            inner,
            fail_appends: std::sync::Mutex::new(None),
            down: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The next `n` appends touching a stream that starts with `prefix` fail.
    pub fn fail_next_appends_to(&self, prefix: &str, n: u32) {
        *self.fail_appends.lock().expect("poisoned") = Some((prefix.to_string(), n));
    }

    /// While down, every call fails.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Invalid("injected fault: the store is down".into()));
        }
        Ok(())
    }
}

use events::{Appended, RecordedEvent, StoreError, StreamAppend};

#[async_trait::async_trait]
impl EventStore for FlakyStore {
    async fn append_many(&self, appends: Vec<StreamAppend>) -> Result<Vec<Appended>, StoreError> {
        self.check()?;
        {
            let mut f = self.fail_appends.lock().expect("poisoned");
            if let Some((prefix, n)) = f.as_mut()
                && *n > 0
                && appends.iter().any(|a| a.stream.starts_with(prefix.as_str()))
            {
                *n -= 1;
                return Err(StoreError::Invalid("injected fault: append refused".into()));
            }
        }
        self.inner.append_many(appends).await
    }

    async fn read_stream(&self, stream: &str, after: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check()?;
        self.inner.read_stream(stream, after).await
    }

    async fn read_stream_page(&self, stream: &str, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check()?;
        self.inner.read_stream_page(stream, after, limit).await
    }

    async fn read_service(&self, service: &str, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check()?;
        self.inner.read_service(service, after, limit).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check()?;
        self.inner.read_all(after, limit).await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.head().await
    }

    fn head_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.head_watch()
    }

    async fn save_snapshot(&self, key: &str, position: u64, state: serde_json::Value) -> Result<(), StoreError> {
        self.check()?;
        self.inner.save_snapshot(key, position, state).await
    }

    async fn load_snapshot(&self, key: &str) -> Result<Option<(u64, serde_json::Value)>, StoreError> {
        self.check()?;
        self.inner.load_snapshot(key).await
    }
}
