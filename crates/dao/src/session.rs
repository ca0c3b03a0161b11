//! Login sessions: durable in MySQL (`sessions`: token hash, user, created, expires), cached
//! in Redis (`<prefix>:session:<token hash>` → user id). A cache miss reads MySQL and refills
//! the cache, so losing Redis logs nobody out. A logout deletes the row, then writes a
//! tombstone over the cache entry (a refill never overwrites one). Cache entries live at most
//! [`CACHE_TTL_SECS`], so whatever a cache could say wrongly lapses soon: a logout made while
//! Redis was unreachable (no tombstone) is seen everywhere within that time.

use std::collections::HashSet;

use chat_model::{
    schema::sessions,
    session::{NewSession, Session},
};
use chrono::{NaiveDateTime, Utc};
use deadpool_redis::redis::{self, AsyncCommands as _};
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _};
use diesel_async::RunQueryDsl as _;

use crate::{
    error::{Calls, DaoResult},
    kv::{Keys, RedisPool},
    mysql::{MysqlPool, conn},
};

/// Longest life of a cache entry; a session outliving it is read from MySQL again.
pub const CACHE_TTL_SECS: u64 = 300;
/// What the cache holds for a session that was logged out.
const REVOKED: &str = "revoked";

#[derive(Clone)]
pub struct SessionDao {
    mysql: MysqlPool,
    mysql_calls: Calls,
    redis: RedisPool,
    keys: Keys,
    redis_calls: Calls,
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

impl SessionDao {
    pub(crate) fn new(mysql: MysqlPool, mysql_calls: Calls, redis: RedisPool, keys: Keys, redis_calls: Calls) -> Self {
        SessionDao { mysql, mysql_calls, redis, keys, redis_calls }
    }

    /// Stores a new session (MySQL; the call fails if it cannot be kept), then caches it (best
    /// effort: a miss finds it in MySQL).
    pub async fn create(&self, token_hash: &str, user_id: u64, ttl_secs: u64) -> DaoResult<()> {
        let expires_at = now() + chrono::Duration::seconds(i64::try_from(ttl_secs).unwrap_or(i64::MAX / 1000));
        let row = NewSession { token_hash: token_hash.to_string(), user_id, expires_at };
        let mut c = conn(&self.mysql).await?;
        self.mysql_calls.run(diesel::insert_into(sessions::table).values(&row).execute(&mut c)).await?;
        let _ = self.cache(token_hash, user_id, ttl_secs).await;
        Ok(())
    }

    /// The user of a live session: from the cache, else from MySQL (and then cached). A cache
    /// that does not answer is a miss.
    pub async fn user_of(&self, token_hash: &str) -> DaoResult<Option<u64>> {
        match self.cached(token_hash).await {
            Ok(Some(Cached::User(id))) => return Ok(Some(id)),
            Ok(Some(Cached::Revoked)) => return Ok(None),
            Ok(None) | Err(_) => {}
        }
        let mut c = conn(&self.mysql).await?;
        let query = sessions::table
            .filter(sessions::token_hash.eq(token_hash))
            .filter(sessions::expires_at.gt(now()))
            .select((sessions::user_id, sessions::expires_at));
        let found: Option<(u64, NaiveDateTime)> =
            self.mysql_calls.run(async { query.first(&mut c).await.optional() }).await?;
        let Some((user_id, expires_at)) = found else { return Ok(None) };
        let left = (expires_at - now()).num_seconds().max(1) as u64;
        let _ = self.cache(token_hash, user_id, left).await;
        Ok(Some(user_id))
    }

    /// Which of `token_hashes` are live sessions, in two round trips at most (the cache for
    /// all, MySQL for those it does not hold).
    pub async fn alive(&self, token_hashes: &[&str]) -> DaoResult<HashSet<String>> {
        let mut alive = HashSet::new();
        if token_hashes.is_empty() {
            return Ok(alive);
        }
        let keys: Vec<String> = token_hashes.iter().map(|h| self.keys.session(h)).collect();
        let cached: Option<Vec<Option<String>>> = match self.redis_calls.run(self.redis.get()).await {
            Ok(mut c) => self.redis_calls.run(c.mget(&keys)).await.ok(),
            Err(_) => None,
        };
        // a cache that did not answer (or answered an error) is not refilled: a Redis that is down
        // or slow would be waited for a second time, and the next check that it answers refills
        let refill = cached.is_some();
        let cached = cached.unwrap_or_default();
        let mut misses = Vec::new();
        for (i, hash) in token_hashes.iter().enumerate() {
            match cached.get(i).cloned().flatten().as_deref() {
                Some(REVOKED) => {}
                Some(_) => {
                    alive.insert(hash.to_string());
                }
                None => misses.push(hash.to_string()),
            }
        }
        if misses.is_empty() {
            return Ok(alive);
        }
        let mut c = conn(&self.mysql).await?;
        let query = sessions::table
            .filter(sessions::token_hash.eq_any(&misses))
            .filter(sessions::expires_at.gt(now()))
            .select((sessions::token_hash, sessions::user_id, sessions::expires_at));
        let found: Vec<(String, u64, NaiveDateTime)> = self.mysql_calls.run(query.load(&mut c)).await?;
        // refilled, or every later check of these sessions would read MySQL again
        if refill {
            let _ = self.cache_many(&found).await;
        }
        alive.extend(found.into_iter().map(|(hash, _, _)| hash));
        Ok(alive)
    }

    /// A user's live sessions, the newest first.
    pub async fn list_for(&self, user_id: u64) -> DaoResult<Vec<Session>> {
        let mut c = conn(&self.mysql).await?;
        let query = sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::expires_at.gt(now()))
            .order(sessions::created_at.desc())
            .select(Session::as_select());
        self.mysql_calls.run(query.load(&mut c)).await
    }

    /// Ends a session: the row goes (the call fails if it cannot), then the cache entry becomes
    /// a tombstone (best effort: see the module). True if it existed.
    pub async fn delete(&self, token_hash: &str) -> DaoResult<bool> {
        let mut c = conn(&self.mysql).await?;
        let deleted = self
            .mysql_calls
            .run(diesel::delete(sessions::table.filter(sessions::token_hash.eq(token_hash))).execute(&mut c))
            .await?;
        let _ = self.tombstone(token_hash).await;
        Ok(deleted > 0)
    }

    async fn tombstone(&self, token_hash: &str) -> DaoResult<()> {
        let mut r = self.redis_calls.run(self.redis.get()).await?;
        let key = self.keys.session(token_hash);
        self.redis_calls.run(r.set_ex::<_, _, ()>(key, REVOKED, CACHE_TTL_SECS)).await
    }

    /// Deletes up to `limit` expired sessions; how many went.
    pub async fn delete_expired(&self, limit: i64) -> DaoResult<usize> {
        let mut c = conn(&self.mysql).await?;
        let expired = sessions::table.filter(sessions::expires_at.le(now())).select(sessions::token_hash).limit(limit);
        let hashes: Vec<String> = self.mysql_calls.run(expired.load(&mut c)).await?;
        if hashes.is_empty() {
            return Ok(0);
        }
        let query = diesel::delete(sessions::table.filter(sessions::token_hash.eq_any(&hashes)));
        self.mysql_calls.run(query.execute(&mut c)).await
    }

    /// Seconds the cache entry has left (tests).
    pub async fn cache_ttl(&self, token_hash: &str) -> DaoResult<i64> {
        let mut c = self.redis_calls.run(self.redis.get()).await?;
        self.redis_calls.run(c.ttl(self.keys.session(token_hash))).await
    }

    async fn cached(&self, token_hash: &str) -> DaoResult<Option<Cached>> {
        let mut c = self.redis_calls.run(self.redis.get()).await?;
        let value: Option<String> = self.redis_calls.run(c.get(self.keys.session(token_hash))).await?;
        Ok(value.map(|v| if v == REVOKED { Cached::Revoked } else { v.parse().map_or(Cached::Revoked, Cached::User) }))
    }

    /// [`Self::cache`] for many sessions read from MySQL, in one pipeline.
    async fn cache_many(&self, found: &[(String, u64, NaiveDateTime)]) -> DaoResult<()> {
        if found.is_empty() {
            return Ok(());
        }
        let mut c = self.redis_calls.run(self.redis.get()).await?;
        let mut pipe = redis::pipe();
        for (hash, user_id, expires_at) in found {
            let left = (*expires_at - now()).num_seconds().max(1) as u64;
            let ttl = left.clamp(1, CACHE_TTL_SECS);
            pipe.cmd("SET").arg(self.keys.session(hash)).arg(user_id).arg("EX").arg(ttl).arg("NX").ignore();
        }
        self.redis_calls.run(pipe.query_async::<()>(&mut *c)).await
    }

    /// Caches a session unless the cache already holds it (or its tombstone).
    async fn cache(&self, token_hash: &str, user_id: u64, ttl_secs: u64) -> DaoResult<()> {
        let mut c = self.redis_calls.run(self.redis.get()).await?;
        let ttl = ttl_secs.clamp(1, CACHE_TTL_SECS);
        let mut set = redis::cmd("SET");
        set.arg(self.keys.session(token_hash)).arg(user_id).arg("EX").arg(ttl).arg("NX");
        self.redis_calls.run(set.query_async::<()>(&mut *c)).await
    }
}

enum Cached {
    User(u64),
    Revoked,
}
