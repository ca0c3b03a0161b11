//! Login sessions in Redis: `<prefix>:session:<sha256 of token>` → user id, with a TTL.

use deadpool_redis::redis::AsyncCommands as _;

use crate::{
    error::{DaoResult, Store, within},
    redis::{Keys, RedisPool},
};

#[derive(Clone)]
pub struct SessionDao {
    pool: RedisPool,
    keys: Keys,
    timeout_ms: u64,
}

impl SessionDao {
    pub fn new(pool: RedisPool, keys: Keys, timeout_ms: u64) -> Self {
        SessionDao { pool, keys, timeout_ms }
    }

    pub async fn create(&self, token_hash: &str, user_id: u64, ttl_secs: u64) -> DaoResult<()> {
        let mut c = within(Store::Redis, self.timeout_ms, self.pool.get()).await?;
        within(Store::Redis, self.timeout_ms, c.set_ex::<_, _, ()>(self.keys.session(token_hash), user_id, ttl_secs))
            .await
    }

    /// The user of a live session.
    pub async fn user_of(&self, token_hash: &str) -> DaoResult<Option<u64>> {
        let mut c = within(Store::Redis, self.timeout_ms, self.pool.get()).await?;
        within(Store::Redis, self.timeout_ms, c.get(self.keys.session(token_hash))).await
    }

    /// Ends a session; true if it existed.
    pub async fn delete(&self, token_hash: &str) -> DaoResult<bool> {
        let mut c = within(Store::Redis, self.timeout_ms, self.pool.get()).await?;
        let n: u64 = within(Store::Redis, self.timeout_ms, c.del(self.keys.session(token_hash))).await?;
        Ok(n > 0)
    }

    /// Seconds the session has left (tests).
    pub async fn ttl(&self, token_hash: &str) -> DaoResult<i64> {
        let mut c = within(Store::Redis, self.timeout_ms, self.pool.get()).await?;
        within(Store::Redis, self.timeout_ms, c.ttl(self.keys.session(token_hash))).await
    }
}
