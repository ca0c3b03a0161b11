//! The no-reply limit (from the original demo): a sender may send `limit` messages to a peer
//! who has never answered. The counter `<prefix>:noreply:<from>:<to>` counts the sender's
//! messages and lives `ttl` seconds, refreshed at each send; the peer "has answered" while
//! the reverse counter is above zero (taking back the last count of a send that failed
//! deletes the counter). Counts are compared as numbers, in one atomic script.
//!
//! These counters are only a cache of the rule: that a peer has answered is also recorded
//! durably (the conversation's `senders`), so a Redis that lost them may let a sender start
//! counting again, but never limits an answered conversation.

use deadpool_redis::redis::Script;

use crate::{
    error::{Calls, DaoResult},
    kv::{Keys, RedisPool},
};

/// What the limit said about one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitOutcome {
    /// Counted; this is the sender's n-th message since the count began.
    Counted(u64),
    /// Refused: `limit` messages sent and no answer.
    Refused,
}

/// KEYS: (mine, theirs) per send, in order; ARGV: limit, ttl. One result per send: its count,
/// or -1 when refused. Sends are taken in order, so a batch behaves as one send after another.
const CHECK_AND_COUNT: &str = r"
local limit = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS, 2 do
  local mine = tonumber(redis.call('GET', KEYS[i]) or '0')
  local theirs = tonumber(redis.call('GET', KEYS[i + 1]) or '0')
  if theirs <= 0 and mine >= limit then
    out[#out + 1] = -1
  else
    out[#out + 1] = redis.call('INCR', KEYS[i])
    redis.call('EXPIRE', KEYS[i], ARGV[2])
  end
end
return out
";

/// KEYS: counters to take one back from (never below zero; a zero counter is removed).
const UNCOUNT: &str = r"
for i = 1, #KEYS do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n > 1 then redis.call('DECR', KEYS[i]) else redis.call('DEL', KEYS[i]) end
end
return #KEYS
";

#[derive(Clone)]
pub struct LimitDao {
    pool: RedisPool,
    keys: Keys,
    calls: Calls,
    check: Script,
    uncount: Script,
}

impl LimitDao {
    pub(crate) fn new(pool: RedisPool, keys: Keys, calls: Calls) -> Self {
        LimitDao { pool, keys, calls, check: Script::new(CHECK_AND_COUNT), uncount: Script::new(UNCOUNT) }
    }

    /// Counts many sends, in order, in one round trip.
    pub async fn check_and_count_many(
        &self,
        sends: &[(u64, u64)],
        limit: u32,
        ttl_secs: u64,
    ) -> DaoResult<Vec<LimitOutcome>> {
        if sends.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.check.prepare_invoke();
        for &(from, to) in sends {
            inv.key(self.keys.no_reply(from, to)).key(self.keys.no_reply(to, from));
        }
        inv.arg(limit).arg(ttl_secs);
        let mut c = self.calls.run(self.pool.get()).await?;
        let counts: Vec<i64> = self.calls.run(inv.invoke_async(&mut *c)).await?;
        Ok(counts
            .into_iter()
            .map(|n| if n < 0 { LimitOutcome::Refused } else { LimitOutcome::Counted(n as u64) })
            .collect())
    }

    /// Takes back one count per send, in one round trip.
    pub async fn uncount_many(&self, sends: &[(u64, u64)]) -> DaoResult<()> {
        if sends.is_empty() {
            return Ok(());
        }
        let mut inv = self.uncount.prepare_invoke();
        for &(from, to) in sends {
            inv.key(self.keys.no_reply(from, to));
        }
        let mut c = self.calls.run(self.pool.get()).await?;
        self.calls.run(inv.invoke_async::<i64>(&mut *c)).await.map(|_| ())
    }
}
