//! Metrics: the observed time series (load, utilization) that forecasts learn from.
//!
//! They are not events: high volume, no causality, kept for a retention period.
//! PostgreSQL stores them in a hypertable or a month-partitioned table (COPY for
//! batches, `date_bin` for aggregation); SQLite in one indexed table.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// One observation of one metric of one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    pub ts: DateTime<Utc>,
    pub service: String,
    pub metric: String,
    pub value: f64,
    #[serde(default = "empty_labels")]
    pub labels: serde_json::Value,
}

fn empty_labels() -> serde_json::Value {
    serde_json::json!({})
}

/// One bucket of an aggregation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    pub count: i64,
}

/// Checks a whole batch before anything is written; the error names the bad sample.
pub fn validate(samples: &[MetricSample]) -> Result<(), StoreError> {
    for (i, s) in samples.iter().enumerate() {
        let what = if s.service.trim().is_empty() {
            "an empty service name"
        } else if s.metric.trim().is_empty() {
            "an empty metric name"
        } else if !s.value.is_finite() {
            "a value that is not a finite number"
        } else if !s.labels.is_object() {
            "labels that are not a JSON object"
        } else {
            continue;
        };
        return Err(StoreError::Invalid(format!(
            "metric sample {i} ({}/{} at {}) has {what}; nothing in this batch was stored",
            s.service, s.metric, s.ts
        )));
    }
    Ok(())
}

/// Where metrics are kept.
#[async_trait]
pub trait MetricStore: Send + Sync + 'static {
    /// Stores a batch atomically; a bad sample refuses the whole batch.
    async fn insert_batch(&self, samples: &[MetricSample]) -> Result<u64, StoreError>;

    /// Samples of one series with `from <= ts < to`, oldest first.
    async fn range(
        &self,
        service: &str,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MetricSample>, StoreError>;

    /// Samples of one series bucketed by `bucket_seconds` (buckets aligned on the Unix epoch).
    async fn aggregate(
        &self,
        service: &str,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket_seconds: i64,
    ) -> Result<Vec<Bucket>, StoreError>;

    /// Deletes samples older than `cutoff`; returns how many were removed.
    async fn apply_retention(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;
}

pub(crate) fn check_bucket(bucket_seconds: i64) -> Result<(), StoreError> {
    if bucket_seconds <= 0 {
        return Err(StoreError::Invalid(format!(
            "bucket of {bucket_seconds} s: it must be a positive number of seconds"
        )));
    }
    Ok(())
}
