use std::fmt;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

/// Which store an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Store {
    Mysql,
    Redis,
    Mongo,
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

    /// A unique index refused a write (an expected outcome, not a store failure).
    pub fn is_duplicate_key(&self) -> bool {
        match self {
            DaoError::Duplicate => true,
            DaoError::Mongo(e) => crate::mongo::is_duplicate(e),
            DaoError::Mysql(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => true,
            _ => false,
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

/// Store failures, by store: `chat_store_errors_total{store}`.
#[derive(Clone, Default)]
pub struct StoreMetrics {
    errors: Family<StoreLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabel {
    store: &'static str,
}

impl StoreMetrics {
    pub fn register(&self, registry: &mut Registry) {
        for store in [Store::Mysql, Store::Redis, Store::Mongo] {
            // every store listed, at 0 until it fails
            let _ = self.errors.get_or_create(&StoreLabel { store: store.name() });
        }
        registry.register("chat_store_errors", "Store calls that failed or timed out, by store", self.errors.clone());
    }

    /// Counts a failure of `store` seen outside a [`Calls`] wrapper.
    pub fn count(&self, store: Store) {
        self.errors.get_or_create(&StoreLabel { store: store.name() }).inc();
    }

    /// How many calls to `store` failed so far (tests, the drill).
    pub fn errors(&self, store: Store) -> u64 {
        self.errors.get_or_create(&StoreLabel { store: store.name() }).get()
    }
}

impl Store {
    pub fn name(self) -> &'static str {
        match self {
            Store::Mysql => "mysql",
            Store::Redis => "redis",
            Store::Mongo => "mongodb",
        }
    }
}

/// How a DAO calls its store: with a deadline, so that a store that hangs fails the request
/// instead, and with its failures counted.
#[derive(Clone)]
pub(crate) struct Calls {
    pub store: Store,
    pub timeout_ms: u64,
    metrics: StoreMetrics,
}

impl Calls {
    pub fn new(store: Store, timeout_ms: u64, metrics: &StoreMetrics) -> Self {
        Calls { store, timeout_ms, metrics: metrics.clone() }
    }

    /// The same store with another deadline (index builds, readiness).
    pub fn with_timeout(&self, timeout_ms: u64) -> Self {
        Calls { timeout_ms, ..self.clone() }
    }

    /// Runs a store call under the deadline.
    ///
    /// The call's future is boxed here, at once: the drivers' futures are large (a deadpool
    /// `get` holds its connection set-up inline, ~13 KiB), and inline they would make every
    /// caller's future that large — among them each WebSocket session's, for as long as it
    /// lives (heaptrack: `CHAT_BENCH_HEAPTRACK=1 scripts/bench.sh idle`). Boxed, the memory
    /// exists only while the call runs.
    pub fn run<T, E, F>(&self, fut: F) -> impl Future<Output = DaoResult<T>> + use<T, E, F>
    where
        F: IntoFuture<Output = Result<T, E>>,
        DaoError: From<E>,
    {
        let call = Box::pin(fut.into_future());
        let (store, ms, metrics) = (self.store, self.timeout_ms, self.metrics.clone());
        async move {
            let result = match tokio::time::timeout(std::time::Duration::from_millis(ms), call).await {
                Ok(r) => r.map_err(DaoError::from),
                Err(_) => Err(DaoError::Timeout(store)),
            };
            // a unique index refusing a write is an answer, not a failure
            if let Err(e) = &result
                && !e.is_duplicate_key()
            {
                metrics.count(store);
            }
            result
        }
    }
}
