//! A read cache in front of the read models, so dashboards that poll do not
//! load the database: in-process by default, Redis when `redis.url` is set.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::AsyncCommands;

/// A string cache with expiry. Failures are reported, and callers treat them
/// as misses: the cache never decides what is true.
#[async_trait]
pub trait Cache: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<String>, CacheError>;
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError>;
}

/// The cache server failed or could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("cache: {0}")]
pub struct CacheError(String);

/// An in-process cache (the embedded default).
#[derive(Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, (String, Instant)>>,
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        let mut e = self.entries.lock().expect("cache poisoned");
        match e.get(key) {
            Some((v, until)) if *until > Instant::now() => Ok(Some(v.clone())),
            Some(_) => {
                e.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError> {
        let mut e = self.entries.lock().expect("cache poisoned");
        e.insert(key.to_string(), (value.to_string(), Instant::now() + ttl));
        Ok(())
    }
}

/// Redis through a reconnecting connection manager; keys are prefixed.
pub struct RedisCache {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

impl RedisCache {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`); keys get `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, CacheError> {
        let client = redis::Client::open(url).map_err(|e| CacheError(format!("redis url `{url}`: {e}")))?;
        let conn = client
            .get_connection_manager()
            .await
            .map_err(|e| CacheError(format!("redis at {url}: {e}")))?;
        Ok(RedisCache {
            conn,
            prefix: prefix.to_string(),
        })
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        let mut c = self.conn.clone();
        c.get(format!("{}{key}", self.prefix))
            .await
            .map_err(|e| CacheError(e.to_string()))
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError> {
        let mut c = self.conn.clone();
        let secs = ttl.as_secs().max(1);
        c.set_ex::<_, _, ()>(format!("{}{key}", self.prefix), value, secs)
            .await
            .map_err(|e| CacheError(e.to_string()))
    }
}

/// The cache `redis.url` selects: Redis when set, in-process otherwise.
pub async fn from_settings(redis_url: &str) -> Result<std::sync::Arc<dyn Cache>, CacheError> {
    if redis_url.trim().is_empty() {
        Ok(std::sync::Arc::new(MemoryCache::default()))
    } else {
        Ok(std::sync::Arc::new(RedisCache::connect(redis_url, "pscaler:").await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract both adapters keep.
    async fn contract(c: &dyn Cache, ns: &str) {
        let k = |s: &str| format!("{ns}:{s}");
        assert_eq!(c.get(&k("missing")).await.unwrap(), None);
        c.set(&k("a"), "1", Duration::from_secs(30)).await.unwrap();
        assert_eq!(c.get(&k("a")).await.unwrap().as_deref(), Some("1"));
        c.set(&k("a"), "2", Duration::from_secs(30)).await.unwrap();
        assert_eq!(c.get(&k("a")).await.unwrap().as_deref(), Some("2"), "a set replaces");
        c.set(&k("short"), "x", Duration::from_secs(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(c.get(&k("short")).await.unwrap(), None, "entries expire");
    }

    #[tokio::test]
    async fn memory_cache_keeps_the_contract() {
        contract(&MemoryCache::default(), "m").await;
    }

    /// Against the Redis server on this machine (scripts/test starts it).
    #[tokio::test]
    async fn redis_cache_keeps_the_contract() {
        let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let c = RedisCache::connect(&url, "pscaler-test:")
            .await
            .expect("Redis is needed (scripts/test starts it)");
        contract(&c, &uuid::Uuid::new_v4().to_string()).await;
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_named_error() {
        let e = RedisCache::connect("redis://127.0.0.1:1", "p:")
            .await
            .err()
            .expect("no server there");
        assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
        assert!(
            RedisCache::connect("not a url", "p:")
                .await
                .err()
                .unwrap()
                .to_string()
                .contains("not a url")
        );
    }
}
