//! Typed configuration. `config/default.yaml` documents every key with the values of
//! [`Settings::default`]; `chat-core` reads the files and the environment into this.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub mysql: MysqlSettings,
    pub redis: RedisSettings,
    pub mongo: MongoSettings,
    pub auth: AuthSettings,
    pub chat: ChatSettings,
    pub websocket: WebSocketSettings,
    pub group: GroupSettings,
    pub cluster: ClusterSettings,
    pub limits: LimitSettings,
    pub log: LogSettings,
}

/// One insert of a commit stays well under MongoDB's 48 MB message (which the driver would
/// split, and a split insert could not be settled as one).
const MAX_COMMIT_BYTES: usize = 16 << 20;

impl Settings {
    /// What the types cannot say; the error names the key.
    pub fn check(&self) -> Result<(), String> {
        let c = &self.chat;
        if !(1..=10_000).contains(&c.commit_batch) {
            return Err("chat.commit_batch must be 1 to 10000".into());
        }
        if c.commit_batch.saturating_mul(c.max_content_bytes) > MAX_COMMIT_BYTES {
            return Err(format!(
                "chat.commit_batch × chat.max_content_bytes must be at most {MAX_COMMIT_BYTES} bytes (one insert)"
            ));
        }
        if c.commit_shards == 0 {
            return Err("chat.commit_shards must be at least 1".into());
        }
        if c.max_frame_bytes < c.max_content_bytes {
            return Err("chat.max_frame_bytes must be at least chat.max_content_bytes".into());
        }
        if !(2..=100_000).contains(&self.group.max_members) {
            return Err("group.max_members must be 2 to 100000".into());
        }
        if self.cluster.lease_ttl_secs == 0 {
            return Err("cluster.lease_ttl_secs must be at least 1".into());
        }
        if self.auth.hash_concurrency == 0 {
            return Err("auth.hash_concurrency must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// 0 means one per core.
    pub workers: usize,
    /// How long a graceful shutdown waits for connections to drain and requests to finish.
    pub shutdown_timeout_secs: u64,
    /// Origins (`scheme://host[:port]`) besides the server's own whose pages may open a
    /// WebSocket; `*` allows any. A request without an `Origin` header (not a browser) is not
    /// checked. (`default`: the configuration crate drops an empty list from the defaults.)
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Take the client's address from `X-Forwarded-For` (set this only behind a proxy that
    /// writes that header); otherwise it is the TCP peer's address.
    pub trust_forwarded_for: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            host: "127.0.0.1".into(),
            port: 8080,
            workers: 0,
            shutdown_timeout_secs: 10,
            allowed_origins: Vec::new(),
            trust_forwarded_for: false,
        }
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlSettings {
    /// `mysql://user:password@host:port/database`; the database is created if missing.
    pub url: String,
    pub pool_size: usize,
    /// Bounds waiting for, creating and recycling a pooled connection.
    pub timeout_ms: u64,
}

impl Default for MysqlSettings {
    fn default() -> Self {
        MysqlSettings { url: "mysql://root@127.0.0.1:3306/chat".into(), pool_size: 16, timeout_ms: 5000 }
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: String,
    /// Every key the server writes starts with `<key_prefix>:`.
    pub key_prefix: String,
    pub pool_size: usize,
    pub timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: "redis://127.0.0.1:6379".into(),
            key_prefix: "chat".into(),
            pool_size: 32,
            timeout_ms: 3000,
        }
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoSettings {
    pub url: String,
    pub database: String,
    pub timeout_ms: u64,
    /// What an acknowledged write means: on disk (`j`), on how many members (`w`).
    pub write_concern: WriteConcernSettings,
}

impl Default for MongoSettings {
    fn default() -> Self {
        MongoSettings {
            url: "mongodb://127.0.0.1:27017".into(),
            database: "chat".into(),
            timeout_ms: 5000,
            write_concern: WriteConcernSettings::default(),
        }
    }
}

/// MongoDB's write concern for every write the server makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteConcernSettings {
    /// `majority`, a number of members, or a tag set's name.
    pub w: Acknowledgment,
    /// Wait for the journal (disk) before acknowledging.
    pub j: bool,
}

impl Default for WriteConcernSettings {
    fn default() -> Self {
        WriteConcernSettings { w: Acknowledgment::Tag("majority".into()), j: true }
    }
}

/// `w` of a write concern: a number of members or a name (`majority`, a tag set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Acknowledgment {
    Nodes(u32),
    Tag(String),
}

// URLs may carry passwords: Debug shows only what cannot be a secret.
macro_rules! debug_without_url {
    ($t:ty, $($field:ident),*) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t)).field("url", &"<redacted>")$(.field(stringify!($field), &self.$field))*.finish()
            }
        }
    };
}
debug_without_url!(MysqlSettings, pool_size, timeout_ms);
debug_without_url!(RedisSettings, key_prefix, pool_size, timeout_ms);
debug_without_url!(MongoSettings, database, timeout_ms, write_concern);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// How long a login token lives.
    pub token_ttl_secs: u64,
    /// Password hashes (argon2id, 19 MiB each) computed at once; more attempts wait.
    pub hash_concurrency: usize,
    /// How long an attempt waits for a hashing slot before it is refused as busy (503).
    pub hash_wait_ms: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings { token_ttl_secs: 7 * 24 * 3600, hash_concurrency: 2, hash_wait_ms: 5000 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSettings {
    /// Messages a sender may have stored for a peer who has never answered.
    pub no_reply_limit: u32,
    /// How long a message is kept after it is sent, and again after it is read.
    pub retention_secs: u64,
    /// Longest message content, in bytes of UTF-8.
    pub max_content_bytes: usize,
    /// Largest WebSocket frame accepted; bigger frames close the connection (1009).
    pub max_frame_bytes: usize,
    pub history_default_limit: u32,
    pub history_max_limit: u32,
    /// Frames queued for one connection before it is closed as too slow.
    pub outbound_queue: usize,
    /// Most sends stored together in one insert (group commit).
    pub commit_batch: usize,
    /// Committers per process, each owning a share of the conversations (inserts in flight).
    pub commit_shards: usize,
    /// Most messages in one unread reply (oldest first; `more` says when there are others).
    pub unread_max: u32,
    /// How long after a pushed message or an unread page was written to a conversation's
    /// socket (`?toUid=`) it counts as read: long enough for the frame to have left the
    /// process. Also how often the sender's own read marks are applied.
    pub read_mark_delay_ms: u64,
}

impl Default for ChatSettings {
    fn default() -> Self {
        ChatSettings {
            no_reply_limit: 3,
            retention_secs: 90 * 24 * 3600,
            max_content_bytes: 4096,
            max_frame_bytes: 65536,
            history_default_limit: 10,
            history_max_limit: 50,
            outbound_queue: 256,
            commit_batch: 512,
            commit_shards: 4,
            unread_max: 200,
            read_mark_delay_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketSettings {
    /// The server pings every connection this often.
    pub ping_interval_secs: u64,
    /// A connection silent this long is closed.
    pub client_timeout_secs: u64,
    /// Life of a presence entry in Redis, refreshed at every ping while connected.
    pub presence_ttl_secs: u64,
}

impl Default for WebSocketSettings {
    fn default() -> Self {
        WebSocketSettings { ping_interval_secs: 15, client_timeout_secs: 45, presence_ttl_secs: 60 }
    }
}

/// Several processes as one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// The node's name in its lease (empty: the host's name); each start of the process is a
    /// life of its own whatever the name, so a node restarted under its name inherits nothing.
    pub node_id: String,
    /// The node's lease in Redis lasts this long unless renewed (a third of it, each time): the
    /// connections of a node that crashed are seen gone within it.
    pub lease_ttl_secs: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings { node_id: String::new(), lease_ttl_secs: 5 }
    }
}

/// Group chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSettings {
    /// Members a group may have, its owner among them.
    pub max_members: usize,
    /// New members read the group's whole timeline; when false they see it from the system
    /// message of their joining.
    pub history_for_new_members: bool,
    /// How long the in-process membership cache trusts what it loaded (membership changes made
    /// through this process invalidate it at once).
    pub cache_ttl_secs: u64,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings { max_members: 1000, history_for_new_members: false, cache_ttl_secs: 60 }
    }
}

/// Abuse limits. Login and register attempts are counted in Redis (shared by every process);
/// the per-user rates are counted by each process for its own connections and requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Login attempts per account within `login_window_secs` that did not succeed; past it, 429.
    pub login_failures: u32,
    pub login_window_secs: u64,
    /// Login and register attempts per client address within `ip_window_secs`.
    pub ip_attempts: u32,
    pub ip_window_secs: u64,
    /// Sends per second a user may make (per process), and the burst above that rate.
    pub sends_per_sec: u32,
    pub send_burst: u32,
    /// Requests per second a user may make to the reading routes (lookup, conversations).
    pub reads_per_sec: u32,
    pub read_burst: u32,
    /// Live WebSocket connections a user may hold, on every process together.
    pub connections_per_user: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            login_failures: 5,
            login_window_secs: 15 * 60,
            ip_attempts: 30,
            ip_window_secs: 60,
            sends_per_sec: 20,
            send_burst: 100,
            reads_per_sec: 10,
            read_burst: 30,
            connections_per_user: 16,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// trace, debug, info, warning, error or critical.
    pub level: String,
    /// Records on the terminal, as [`LogFormat`] says.
    pub terminal: bool,
    /// The terminal's records: `text`, human-readable lines on standard error; `json`, JSON
    /// lines on standard output (for a container's log driver).
    pub format: LogFormat,
    /// The folder of the JSON-lines log file (made if missing); empty for no file.
    pub dir: String,
    pub file: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            terminal: true,
            format: LogFormat::Text,
            dir: "log".into(),
            file: "chat.log".into(),
        }
    }
}

/// How the terminal's records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines on standard error.
    Text,
    /// JSON lines on standard output.
    Json,
}
