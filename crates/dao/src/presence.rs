//! Presence in Redis: per user, a sorted set of live connection ids scored by the time (ms)
//! their entry expires. A process that crashes stops refreshing, so its entries lapse.

use std::time::{SystemTime, UNIX_EPOCH};

use deadpool_redis::redis;

use crate::{
    error::{DaoResult, Store, within},
    redis::{Keys, RedisPool},
};

#[derive(Clone)]
pub struct PresenceDao {
    pool: RedisPool,
    keys: Keys,
    timeout_ms: u64,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

impl PresenceDao {
    pub fn new(pool: RedisPool, keys: Keys, timeout_ms: u64) -> Self {
        PresenceDao { pool, keys, timeout_ms }
    }

    /// Marks (or keeps) a connection live for `ttl_secs`, and drops lapsed entries.
    pub async fn refresh(&self, user_id: u64, conn_id: &str, ttl_secs: u64) -> DaoResult<()> {
        let key = self.keys.presence(user_id);
        let now = now_ms();
        let ttl_ms = (ttl_secs * 1000) as i64;
        let mut c = within(Store::Redis, self.timeout_ms, self.pool.get()).await?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(now)
            .ignore()
            .cmd("ZADD")
            .arg(&key)
            .arg(now + ttl_ms)
            .arg(conn_id)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl_ms)
            .ignore();
        within(Store::Redis, self.timeout_ms, pipe.query_async::<()>(&mut *c)).await
    }

    /// Removes a connection that closed.
    pub async fn remove(&self, user_id: u64, conn_id: &str) -> DaoResult<()> {
        let mut c = within(Store::Redis, self.timeout_ms, self.pool.get()).await?;
        within(
            Store::Redis,
            self.timeout_ms,
            redis::cmd("ZREM").arg(self.keys.presence(user_id)).arg(conn_id).query_async::<()>(&mut *c),
        )
        .await
    }

    /// How many live connections the user has, on any node.
    pub async fn live_connections(&self, user_id: u64) -> DaoResult<u64> {
        let mut c = within(Store::Redis, self.timeout_ms, self.pool.get()).await?;
        within(
            Store::Redis,
            self.timeout_ms,
            redis::cmd("ZCOUNT").arg(self.keys.presence(user_id)).arg(now_ms()).arg("+inf").query_async(&mut *c),
        )
        .await
    }
}
