//! Attempt counters in Redis (login and register throttling): a fixed window per key,
//! `<prefix>:throttle:<kind>:<subject>`, counting attempts until the window lapses.

use deadpool_redis::redis::{self, Script};

use crate::{
    error::{Calls, DaoResult},
    kv::{Keys, RedisPool},
};

/// What the counters said about an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over a limit: allowed again in this many seconds.
    Limited {
        retry_after_secs: u64,
    },
}

/// One counter an attempt goes through: its key's kind and subject, the attempts allowed per
/// window, the window.
#[derive(Debug, Clone)]
pub struct Counter<'a> {
    pub kind: &'a str,
    pub subject: &'a str,
    pub limit: u32,
    pub window_secs: u64,
}

/// KEYS: the counters, in order; ARGV: (limit, window) per key. Counts the attempt on each in
/// turn and stops at the first that is over its limit: its seconds left, or -1 when allowed.
const HIT: &str = r"
for i = 1, #KEYS do
  local n = redis.call('INCR', KEYS[i])
  local window = tonumber(ARGV[2 * i])
  if n == 1 then redis.call('EXPIRE', KEYS[i], window) end
  if n > tonumber(ARGV[2 * i - 1]) then
    local left = redis.call('TTL', KEYS[i])
    if left < 0 then
      redis.call('EXPIRE', KEYS[i], window)
      left = window
    end
    return left
  end
end
return -1
";

#[derive(Clone)]
pub struct ThrottleDao {
    pool: RedisPool,
    keys: Keys,
    calls: Calls,
    hit: Script,
}

impl ThrottleDao {
    pub(crate) fn new(pool: RedisPool, keys: Keys, calls: Calls) -> Self {
        ThrottleDao { pool, keys, calls, hit: Script::new(HIT) }
    }

    /// Counts one attempt on each counter, in order, until one is over its limit.
    pub async fn hit(&self, counters: &[Counter<'_>]) -> DaoResult<Verdict> {
        if counters.is_empty() {
            return Ok(Verdict::Allowed);
        }
        let mut inv = self.hit.prepare_invoke();
        for c in counters {
            inv.key(self.keys.throttle(c.kind, c.subject)).arg(c.limit).arg(c.window_secs.max(1));
        }
        let mut conn = self.calls.run(self.pool.get()).await?;
        let left: i64 = self.calls.run(inv.invoke_async(&mut *conn)).await?;
        Ok(if left < 0 { Verdict::Allowed } else { Verdict::Limited { retry_after_secs: left.max(1) as u64 } })
    }

    /// Forgets a counter (a successful login clears its account's failures).
    pub async fn clear(&self, kind: &str, subject: &str) -> DaoResult<()> {
        let mut conn = self.calls.run(self.pool.get()).await?;
        self.calls.run(redis::cmd("DEL").arg(self.keys.throttle(kind, subject)).query_async::<()>(&mut *conn)).await
    }
}
