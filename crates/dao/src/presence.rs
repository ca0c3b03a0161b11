//! Presence in Redis: per user, a sorted set of live connection ids scored by the time (ms)
//! their entry expires. A process that crashes stops refreshing, so its entries lapse. The set
//! also bounds how many connections a user holds on all processes together.

use std::time::{SystemTime, UNIX_EPOCH};

use deadpool_redis::redis::{self, Script};

use crate::{
    error::{Calls, DaoResult},
    kv::{Keys, RedisPool},
};

/// Whether a new connection may open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// `first`: the user had no live connection before this one (came online).
    Admitted { first: bool },
    /// The user already holds the most connections allowed.
    Full,
}

/// KEYS: the user's set; ARGV: now (ms), ttl (ms), member, max. Drops lapsed entries, then adds
/// the member unless the set is full. 2 admitted as the only one, 1 admitted, 0 full.
const ADMIT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
local known = redis.call('ZSCORE', KEYS[1], ARGV[3])
if not known and n >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if n == 0 or (known and n == 1) then
  return 2
end
return 1
";

/// KEYS: the user's set; ARGV: now (ms), member. Removes the member; returns how many live
/// entries are left.
const REMOVE: &str = r"
redis.call('ZREM', KEYS[1], ARGV[2])
return redis.call('ZCOUNT', KEYS[1], ARGV[1], '+inf')
";

/// Connections refreshed per pipeline (one round trip each).
const REFRESH_CHUNK: usize = 1000;

#[derive(Clone)]
pub struct PresenceDao {
    pool: RedisPool,
    keys: Keys,
    calls: Calls,
    admit: Script,
    remove: Script,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

impl PresenceDao {
    pub(crate) fn new(pool: RedisPool, keys: Keys, calls: Calls) -> Self {
        PresenceDao { pool, keys, calls, admit: Script::new(ADMIT), remove: Script::new(REMOVE) }
    }

    /// Adds a connection of `user` for `ttl_secs`, unless the user already holds `max` live ones.
    pub async fn admit(&self, user_id: u64, conn_id: &str, ttl_secs: u64, max: u32) -> DaoResult<Admission> {
        let mut inv = self.admit.prepare_invoke();
        inv.key(self.keys.presence(user_id)).arg(now_ms()).arg(ttl_secs * 1000).arg(conn_id).arg(max);
        let mut c = self.calls.run(self.pool.get()).await?;
        let admitted: i64 = self.calls.run(inv.invoke_async(&mut *c)).await?;
        Ok(match admitted {
            0 => Admission::Full,
            n => Admission::Admitted { first: n == 2 },
        })
    }

    /// Keeps connections live for `ttl_secs` more, and drops their users' lapsed entries:
    /// one pipeline per thousand connections, whatever their users.
    pub async fn refresh_many(&self, conns: &[(u64, &str)], ttl_secs: u64) -> DaoResult<()> {
        let ttl_ms = (ttl_secs * 1000) as i64;
        for chunk in conns.chunks(REFRESH_CHUNK) {
            let now = now_ms();
            let mut pipe = redis::pipe();
            for &(user, conn_id) in chunk {
                let key = self.keys.presence(user);
                pipe.cmd("ZREMRANGEBYSCORE").arg(&key).arg("-inf").arg(now).ignore();
                pipe.cmd("ZADD").arg(&key).arg(now + ttl_ms).arg(conn_id).ignore();
                pipe.cmd("PEXPIRE").arg(&key).arg(ttl_ms).ignore();
            }
            let mut c = self.calls.run(self.pool.get()).await?;
            self.calls.run(pipe.query_async::<()>(&mut *c)).await?;
        }
        Ok(())
    }

    /// Removes a connection that closed; returns how many live ones the user has left.
    pub async fn remove(&self, user_id: u64, conn_id: &str) -> DaoResult<u64> {
        let mut inv = self.remove.prepare_invoke();
        inv.key(self.keys.presence(user_id)).arg(now_ms()).arg(conn_id);
        let mut c = self.calls.run(self.pool.get()).await?;
        self.calls.run(inv.invoke_async(&mut *c)).await
    }

    /// Which of `users` have a live connection on any node: one pipeline.
    pub async fn online_among(&self, users: &[u64]) -> DaoResult<std::collections::HashSet<u64>> {
        if users.is_empty() {
            return Ok(Default::default());
        }
        let now = now_ms();
        let mut pipe = redis::pipe();
        for &u in users {
            pipe.cmd("ZCOUNT").arg(self.keys.presence(u)).arg(now).arg("+inf");
        }
        let mut c = self.calls.run(self.pool.get()).await?;
        let counts: Vec<u64> = self.calls.run(pipe.query_async(&mut *c)).await?;
        Ok(users.iter().zip(counts).filter(|(_, n)| *n > 0).map(|(u, _)| *u).collect())
    }

    /// How many live connections the user has, on any node.
    pub async fn live_connections(&self, user_id: u64) -> DaoResult<u64> {
        let mut c = self.calls.run(self.pool.get()).await?;
        self.calls
            .run(redis::cmd("ZCOUNT").arg(self.keys.presence(user_id)).arg(now_ms()).arg("+inf").query_async(&mut *c))
            .await
    }
}
