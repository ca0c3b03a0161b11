use std::fmt;

/// Which store an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Mysql,
    Redis,
    Mongo,
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Store::Mysql => "mysql",
            Store::Redis => "redis",
            Store::Mongo => "mongodb",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DaoError {
    /// A unique index or key refused the write.
    #[error("duplicate key")]
    Duplicate,
    #[error("mysql: {0}")]
    Mysql(#[from] diesel::result::Error),
    #[error("mysql connection: {0}")]
    MysqlConnect(String),
    #[error("redis: {0}")]
    Redis(#[from] deadpool_redis::redis::RedisError),
    #[error("redis connection: {0}")]
    RedisPool(#[from] deadpool_redis::PoolError),
    #[error("mongodb: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("bson: {0}")]
    Bson(#[from] bson::ser::Error),
    #[error("{0} did not answer in time")]
    Timeout(Store),
    /// A store failure passed on to several requests at once (errors are not `Clone`).
    #[error("{store}: {cause}")]
    Unavailable { store: Store, cause: String },
    #[error("migrations: {0}")]
    Migration(String),
    #[error("invalid store configuration: {0}")]
    Config(String),
}

pub type DaoResult<T> = Result<T, DaoError>;

impl DaoError {
    /// A copy to hand to each of several requests that one store call failed for.
    pub fn shared(&self) -> DaoError {
        match self.store() {
            Some(store) => DaoError::Unavailable { store, cause: self.to_string() },
            None => DaoError::Config(self.to_string()),
        }
    }

    /// The store the error came from, when it came from one.
    pub fn store(&self) -> Option<Store> {
        match self {
            DaoError::Mysql(_) | DaoError::MysqlConnect(_) | DaoError::Migration(_) => Some(Store::Mysql),
            DaoError::Redis(_) | DaoError::RedisPool(_) => Some(Store::Redis),
            DaoError::Mongo(_) | DaoError::Bson(_) => Some(Store::Mongo),
            DaoError::Timeout(s) => Some(*s),
            DaoError::Unavailable { store, .. } => Some(*store),
            DaoError::Duplicate | DaoError::Config(_) => None,
        }
    }
}

/// Runs a store call with a deadline, so that a store that hangs fails the request instead.
///
/// The call's future is boxed here, at once: the drivers' futures are large (a deadpool `get`
/// holds its connection set-up inline, ~13 KiB), and inline they would make every caller's
/// future that large — among them each WebSocket session's, for as long as it lives
/// (heaptrack: `CHAT_BENCH_HEAPTRACK=1 scripts/bench.sh idle`). Boxed, the memory exists only
/// while the call runs.
pub(crate) fn within<T, E, F>(store: Store, ms: u64, fut: F) -> impl Future<Output = DaoResult<T>> + use<T, E, F>
where
    F: IntoFuture<Output = Result<T, E>>,
    DaoError: From<E>,
{
    let call = Box::pin(fut.into_future());
    async move {
        match tokio::time::timeout(std::time::Duration::from_millis(ms), call).await {
            Ok(r) => r.map_err(DaoError::from),
            Err(_) => Err(DaoError::Timeout(store)),
        }
    }
}
