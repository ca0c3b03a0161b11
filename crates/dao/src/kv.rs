//! Redis: the pool and the key names. Every key starts with the configured prefix.
//! Redis holds caches and counters only: nothing in it is the only copy of anything a user
//! was told is saved.

use std::time::Duration;

use chat_model::config::RedisSettings;
use deadpool_redis::{Config, PoolConfig, Runtime, Timeouts};

use crate::error::{DaoError, DaoResult};

pub type RedisPool = deadpool_redis::Pool;

pub fn connect(settings: &RedisSettings) -> DaoResult<RedisPool> {
    let timeout = Some(Duration::from_millis(settings.timeout_ms));
    let mut cfg = Config::from_url(settings.url.clone());
    cfg.pool = Some(PoolConfig {
        max_size: settings.pool_size.max(1),
        timeouts: Timeouts { wait: timeout, create: timeout, recycle: timeout },
        ..PoolConfig::default()
    });
    cfg.create_pool(Some(Runtime::Tokio1)).map_err(|e| DaoError::Config(format!("redis: {e}")))
}

/// The names of every key the server writes.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys { prefix: prefix.to_string() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The cache of a login session (MySQL holds it), by the SHA-256 of its token (the token
    /// itself is never stored).
    pub fn session(&self, token_hash: &str) -> String {
        format!("{}:session:{token_hash}", self.prefix)
    }

    /// The live connections of a user: a sorted set of connection ids scored by expiry (ms).
    pub fn presence(&self, user_id: u64) -> String {
        format!("{}:presence:{user_id}", self.prefix)
    }

    /// A node's lease (its process's life): present while the node refreshes it.
    pub fn lease(&self, node: &str) -> String {
        format!("{}:lease:{node}", self.prefix)
    }

    /// The registry of nodes: a hash of node → label.
    pub fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    /// The users a node has had connections of (claimed when its lease lapses).
    pub fn node_users(&self, node: &str) -> String {
        format!("{}:nodeusers:{node}", self.prefix)
    }

    /// The pub/sub channel of one node (pushes for its connections).
    pub fn node_channel(&self, node: &str) -> String {
        format!("{}:node:{node}", self.prefix)
    }

    /// The pub/sub channel every node listens on.
    pub fn all_nodes_channel(&self) -> String {
        format!("{}:all-nodes", self.prefix)
    }

    /// An attempt counter: `kind` names the limit, `subject` what it counts (an account, an
    /// address).
    pub fn throttle(&self, kind: &str, subject: &str) -> String {
        format!("{}:throttle:{kind}:{subject}", self.prefix)
    }
}
