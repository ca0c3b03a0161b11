//! The no-reply limit (from the original demo): a sender may send `limit` messages to a peer
//! who has never answered. The counter `<prefix>:noreply:<from>:<to>` counts the sender's
//! messages and lives `ttl` seconds, refreshed at each send; the peer "has answered" while
//! the reverse counter is above zero (a count taken back for a send that failed leaves 0). Counts are compared as numbers, in one atomic script.

use deadpool_redis::redis::Script;

use crate::{
    error::{DaoResult, Store, within},
    redis::{Keys, RedisPool},
};

/// What the limit said about one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitOutcome {
    /// Counted; this is the sender's n-th message since the count began.
    Counted(u64),
    /// Refused: `limit` messages sent and no answer.
    Refused,
}

const CHECK_AND_COUNT: &str = r"
local mine = tonumber(redis.call('GET', KEYS[1]) or '0')
local theirs = tonumber(redis.call('GET', KEYS[2]) or '0')
if theirs <= 0 and mine >= tonumber(ARGV[1]) then
  return -1
end
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return n
";

const UNCOUNT: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 1 then return redis.call('DECR', KEYS[1]) end
redis.call('DEL', KEYS[1])
return 0
";

#[derive(Clone)]
pub struct LimitDao {
    pool: RedisPool,
    keys: Keys,
    timeout_ms: u64,
    check: Script,
    uncount: Script,
}

impl LimitDao {
    pub fn new(pool: RedisPool, keys: Keys, timeout_ms: u64) -> Self {
        LimitDao { pool, keys, timeout_ms, check: Script::new(CHECK_AND_COUNT), uncount: Script::new(UNCOUNT) }
    }

    /// Counts a send from `from` to `to`, unless the limit refuses it.
    pub async fn check_and_count(&self, from: u64, to: u64, limit: u32, ttl_secs: u64) -> DaoResult<LimitOutcome> {
        let mut c = within(Store::Redis, self.timeout_ms, self.pool.get()).await?;
        let mut inv = self.check.key(self.keys.no_reply(from, to));
        inv.key(self.keys.no_reply(to, from)).arg(limit).arg(ttl_secs);
        let n: i64 = within(Store::Redis, self.timeout_ms, inv.invoke_async(&mut *c)).await?;
        Ok(if n < 0 { LimitOutcome::Refused } else { LimitOutcome::Counted(n as u64) })
    }

    /// Takes back one count (the send it counted was not stored).
    pub async fn uncount(&self, from: u64, to: u64) -> DaoResult<()> {
        let mut c = within(Store::Redis, self.timeout_ms, self.pool.get()).await?;
        let inv = self.uncount.key(self.keys.no_reply(from, to));
        within(Store::Redis, self.timeout_ms, inv.invoke_async::<i64>(&mut *c)).await.map(|_| ())
    }
}
