//! Test support shared by the crates' integration tests.
//!
//! [`TestStores`] names a MySQL database, a MongoDB database and a Redis key prefix of its own,
//! on the real servers (from `CHAT_TEST_MYSQL_URL`, `CHAT_TEST_REDIS_URL`, `CHAT_TEST_MONGO_URL`,
//! defaulting to the local standard ports), and removes all three when dropped, so tests run in
//! parallel without seeing each other's data.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod proxy;

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use chat_model::Settings;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};

/// Polls `probe` every 20 ms until `done` holds for its value or `within` has passed, and
/// returns the last value: for what happens off the request's path (a summary written after
/// the acknowledgement, presence cleared after a close). The caller asserts on the value.
pub async fn poll_until<T, F, Fut>(within: Duration, mut probe: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = Instant::now() + within;
    loop {
        let value = probe().await;
        if done(&value) || Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

/// A name no other test (in this or another process) uses: `chat_test_<pid>_<n>_<nanos>`.
pub fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("chat_test_{}_{n}_{nanos}", std::process::id())
}

/// Settings pointing at stores of this test's own; cleaned up on drop.
pub struct TestStores {
    pub settings: Settings,
    mysql_server: String,
    name: String,
}

impl Default for TestStores {
    fn default() -> Self {
        Self::new()
    }
}

impl TestStores {
    pub fn new() -> TestStores {
        let name = unique_name();
        let mysql_server =
            env_or("CHAT_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306").trim_end_matches('/').to_string();
        let mut settings = Settings::default();
        settings.mysql.url = format!("{mysql_server}/{name}");
        settings.mysql.pool_size = 4;
        settings.redis.url = env_or("CHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379");
        settings.redis.key_prefix = name.clone();
        settings.redis.pool_size = 8;
        settings.mongo.url = env_or("CHAT_TEST_MONGO_URL", "mongodb://127.0.0.1:27017");
        settings.mongo.database = name.clone();
        settings.server.port = 0;
        settings.server.workers = 2;
        settings.server.shutdown_timeout_secs = 1;
        settings.log.terminal = false;
        settings.log.dir = String::new();
        TestStores { settings, mysql_server, name }
    }

    /// The name used for the database, the Mongo database and the Redis prefix.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This test's MongoDB database, to look at or change what the server stored.
    pub async fn mongo(&self) -> mongodb::Database {
        mongodb::Client::with_uri_str(&self.settings.mongo.url).await.expect("mongodb client").database(&self.name)
    }

    async fn cleanup(mysql_server: String, settings: Settings, name: String) {
        if let Ok(mut c) = AsyncMysqlConnection::establish(&mysql_server).await {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS `{name}`")).execute(&mut c).await;
        }
        if let Ok(client) = mongodb::Client::with_uri_str(&settings.mongo.url).await {
            let _ = client.database(&name).drop().await;
        }
        if let Ok(client) = redis::Client::open(settings.redis.url.as_str())
            && let Ok(mut c) = client.get_multiplexed_async_connection().await
        {
            let keys: Vec<String> =
                redis::cmd("KEYS").arg(format!("{name}:*")).query_async(&mut c).await.unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut c).await;
            }
        }
    }
}

impl Drop for TestStores {
    fn drop(&mut self) {
        let (server, settings, name) = (self.mysql_server.clone(), self.settings.clone(), self.name.clone());
        // Drop may run inside a runtime (or during a panic): clean up on a thread of its own.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(Self::cleanup(server, settings, name));
            }
        })
        .join();
    }
}

/// A logger for tests: silent unless `CHAT_TEST_LOG` is set (to a level such as `debug`).
pub fn test_logger() -> slog::Logger {
    use slog::Drain as _;
    match std::env::var("CHAT_TEST_LOG") {
        Ok(level) if !level.is_empty() => {
            let level = level.parse().unwrap_or(slog::Level::Debug);
            let decorator = slog_term::PlainDecorator::new(std::io::stderr());
            let drain = slog_term::FullFormat::new(decorator).build().fuse();
            let drain = slog_async::Async::new(drain).build().filter_level(level).fuse();
            slog::Logger::root(drain, slog::o!())
        }
        _ => slog::Logger::root(slog::Discard, slog::o!()),
    }
}
