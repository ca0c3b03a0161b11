//! Presence in Redis: per user, a sorted set of live connection ids (`<node>:<conn>`) scored by
//! the time (ms) their entry expires, refreshed by the node's heartbeat; and per node a lease, a
//! key with a short ttl the node renews (`lease:<node>`, `<node>` being the process's life, new
//! at each start). An entry counts only while its node's lease is there: a node that crashes
//! stops renewing, and all of its entries lapse with the lease, within its ttl (a few seconds),
//! though each would last until its own expiry. The set also bounds how many connections a user
//! holds on all processes together.
//!
//! Each node is listed in a registry (`nodes`: node → label) with the users it has had
//! connections of (`nodeusers:<node>`), so that when its lease lapses one other node claims it
//! and tells the peers of those users who went offline.
//!
//! The scripts read the leases their entries name (keys they are not given): Redis standalone
//! or with one primary, not Redis Cluster.

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

/// Drops the set's lapsed entries and those of nodes without a lease; returns the live ones.
/// ARGV[1]: now (ms); ARGV[2]: the lease keys' prefix; ARGV[3]: the calling node (alive).
const LIVE: &str = r"
local alive = {}
local function node_alive(node)
  if alive[node] == nil then
    alive[node] = node == ARGV[3] or redis.call('EXISTS', ARGV[2] .. node) == 1
  end
  return alive[node]
end
local function live(key)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  local out = {}
  for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local node = string.match(m, '^([^:]+):')
    if node and node_alive(node) then
      out[#out + 1] = m
    else
      redis.call('ZREM', key, m)
    end
  end
  return out
end
";

/// KEYS: the user's set, the node's users; ARGV: now (ms), lease prefix, node, ttl (ms), member,
/// max, user. Adds the member unless the user already holds `max` live entries (and the user to
/// the node's). 2 admitted as the only one, 1 admitted, 0 full.
const ADMIT: &str = r"
local entries = live(KEYS[1])
local n, known = #entries, false
for _, m in ipairs(entries) do
  if m == ARGV[5] then known = true end
end
if not known and n >= tonumber(ARGV[6]) then
  return 0
end
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[4]), ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[7])
if n == 0 or (known and n == 1) then
  return 2
end
return 1
";

/// KEYS: the user's set; ARGV: now (ms), lease prefix, node, member. Removes the member;
/// returns how many live entries are left.
const REMOVE: &str = r"
redis.call('ZREM', KEYS[1], ARGV[4])
return #live(KEYS[1])
";

/// KEYS: users' sets; ARGV: now (ms), lease prefix, node. How many live entries each has.
const COUNT: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = #live(key)
end
return out
";

/// KEYS: users' sets; ARGV: now (ms), lease prefix, node. The nodes each has live entries on.
const ROUTES: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local nodes, seen = {}, {}
  for _, m in ipairs(live(key)) do
    local node = string.match(m, '^([^:]+):')
    if not seen[node] then
      seen[node] = true
      nodes[#nodes + 1] = node
    end
  end
  out[i] = nodes
end
return out
";

/// KEYS: the registry of nodes, the lapsed node's users, its lease. ARGV: the node. Takes the
/// node out of the registry, unless its lease is back; the one caller that did gets the users
/// it had (and they are forgotten).
const CLAIM: &str = r"
if redis.call('EXISTS', KEYS[3]) == 1 then
  return false
end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return false
end
local users = redis.call('SMEMBERS', KEYS[2])
redis.call('DEL', KEYS[2])
return users
";

/// The deadline of a route lookup (ms), on the send path.
const ROUTE_TIMEOUT_MS: u64 = 500;

/// Connections refreshed per pipeline (one round trip each).
const REFRESH_CHUNK: usize = 1000;

#[derive(Clone)]
pub struct PresenceDao {
    pool: RedisPool,
    keys: Keys,
    calls: Calls,
    admit: Script,
    remove: Script,
    count: Script,
    routes: Script,
    claim: Script,
    /// The node (process life) this handle speaks for: its own entries count without a look at
    /// its lease.
    node: std::sync::Arc<str>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

impl PresenceDao {
    pub(crate) fn new(pool: RedisPool, keys: Keys, calls: Calls) -> Self {
        let script = |body: &str| Script::new(&format!("{LIVE}{body}"));
        PresenceDao {
            pool,
            keys,
            calls,
            admit: script(ADMIT),
            remove: script(REMOVE),
            count: script(COUNT),
            routes: script(ROUTES),
            claim: Script::new(CLAIM),
            node: "-".into(),
        }
    }

    /// The same store, speaking for `node` (the process's life: `<node>:<conn>` entries).
    pub fn for_node(&self, node: std::sync::Arc<str>) -> PresenceDao {
        PresenceDao { node, ..self.clone() }
    }

    fn args(&self, inv: &mut redis::ScriptInvocation<'_>) {
        inv.arg(now_ms()).arg(self.keys.lease("")).arg(&*self.node);
    }

    /// The node this handle speaks for.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Renews this node's lease for `ttl_ms` (`label`: the node's configured name), and keeps
    /// it in the registry of nodes (where a lease that lapsed is found).
    pub async fn renew_lease(&self, label: &str, ttl_ms: u64) -> DaoResult<()> {
        let mut c = self.calls.run(self.pool.get()).await?;
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg(self.keys.lease(&self.node)).arg(label).arg("PX").arg(ttl_ms.max(1)).ignore();
        pipe.cmd("HSET").arg(self.keys.nodes()).arg(&*self.node).arg(label).ignore();
        self.calls.run(pipe.query_async::<()>(&mut *c)).await
    }

    /// Ends this node's lease at once (a graceful stop): its entries no longer count, and it
    /// leaves the registry (its connections said goodbye themselves).
    pub async fn release_lease(&self) -> DaoResult<()> {
        let mut c = self.calls.run(self.pool.get()).await?;
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(self.keys.lease(&self.node)).ignore();
        pipe.cmd("HDEL").arg(self.keys.nodes()).arg(&*self.node).ignore();
        pipe.cmd("DEL").arg(self.keys.node_users(&self.node)).ignore();
        self.calls.run(pipe.query_async::<()>(&mut *c)).await
    }

    /// The nodes in the registry whose lease has lapsed (crashed, or cut off from Redis for
    /// longer than their ttl), this one aside.
    pub async fn lapsed_nodes(&self) -> DaoResult<Vec<String>> {
        let mut c = self.calls.run(self.pool.get()).await?;
        let nodes: Vec<String> =
            self.calls.run(redis::cmd("HKEYS").arg(self.keys.nodes()).query_async(&mut *c)).await?;
        let nodes: Vec<String> = nodes.into_iter().filter(|n| *n != *self.node).collect();
        if nodes.is_empty() {
            return Ok(nodes);
        }
        let mut pipe = redis::pipe();
        for n in &nodes {
            pipe.cmd("EXISTS").arg(self.keys.lease(n));
        }
        let alive: Vec<bool> = self.calls.run(pipe.query_async(&mut *c)).await?;
        Ok(nodes.into_iter().zip(alive).filter(|(_, a)| !a).map(|(n, _)| n).collect())
    }

    /// Takes a lapsed node out of the registry. The one caller that does gets the users who had
    /// connections on it (to tell their peers who of them went offline); the others get None.
    pub async fn claim_lapsed(&self, node: &str) -> DaoResult<Option<Vec<u64>>> {
        let mut inv = self.claim.prepare_invoke();
        inv.key(self.keys.nodes()).key(self.keys.node_users(node)).key(self.keys.lease(node)).arg(node);
        let mut c = self.calls.run(self.pool.get()).await?;
        self.calls.run(inv.invoke_async(&mut *c)).await
    }

    /// The nodes each of `users` has live connections on (this one included), in one script.
    pub async fn routes(&self, users: &[u64]) -> DaoResult<Vec<Vec<String>>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.routes.prepare_invoke();
        for &u in users {
            inv.key(self.keys.presence(u));
        }
        self.args(&mut inv);
        // on the send path: a slow Redis is given up on soon (pushes then stay on this node)
        let calls = self.calls.with_timeout(ROUTE_TIMEOUT_MS);
        let mut c = calls.run(self.pool.get()).await?;
        calls.run(inv.invoke_async(&mut *c)).await
    }

    /// Adds a connection of `user` for `ttl_secs`, unless the user already holds `max` live ones.
    pub async fn admit(&self, user_id: u64, conn_id: &str, ttl_secs: u64, max: u32) -> DaoResult<Admission> {
        let mut inv = self.admit.prepare_invoke();
        inv.key(self.keys.presence(user_id)).key(self.keys.node_users(&self.node));
        self.args(&mut inv);
        inv.arg(ttl_secs * 1000).arg(conn_id).arg(max).arg(user_id);
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
            let users: std::collections::HashSet<u64> = chunk.iter().map(|(u, _)| *u).collect();
            pipe.cmd("SADD").arg(self.keys.node_users(&self.node)).arg(users.into_iter().collect::<Vec<_>>()).ignore();
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
        inv.key(self.keys.presence(user_id));
        self.args(&mut inv);
        inv.arg(conn_id);
        let mut c = self.calls.run(self.pool.get()).await?;
        self.calls.run(inv.invoke_async(&mut *c)).await
    }

    /// Which of `users` have a live connection on any node (whose lease is there): one script.
    pub async fn online_among(&self, users: &[u64]) -> DaoResult<std::collections::HashSet<u64>> {
        if users.is_empty() {
            return Ok(Default::default());
        }
        let counts = self.counts(users).await?;
        Ok(users.iter().zip(counts).filter(|(_, n)| *n > 0).map(|(u, _)| *u).collect())
    }

    async fn counts(&self, users: &[u64]) -> DaoResult<Vec<u64>> {
        let mut inv = self.count.prepare_invoke();
        for &u in users {
            inv.key(self.keys.presence(u));
        }
        self.args(&mut inv);
        let mut c = self.calls.run(self.pool.get()).await?;
        self.calls.run(inv.invoke_async(&mut *c)).await
    }

    /// How many live connections the user has, on any node (whose lease is there).
    pub async fn live_connections(&self, user_id: u64) -> DaoResult<u64> {
        Ok(self.counts(&[user_id]).await?.first().copied().unwrap_or(0))
    }
}
