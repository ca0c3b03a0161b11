//! `chat-dao`: the only crate that talks to MySQL, Redis and MongoDB.
//!
//! [`Stores`] holds the pools and clients (cheap handles); [`DaoGroup`] holds one data-access
//! struct per store concern, each a clone of the handle it needs.

pub mod conversation;
mod error;
pub mod health;
pub mod limit;
pub mod message;
pub mod mongo;
pub mod mysql;
pub mod presence;
pub mod redis;
pub mod session;
pub mod user;

use chat_model::Settings;

pub use conversation::{ConversationDao, ConversationSummary};
pub use error::{DaoError, DaoResult, Store};
pub use health::HealthDao;
pub use limit::{LimitDao, LimitOutcome};
pub use message::{InsertFailure, MessageDao};
pub use presence::PresenceDao;
pub use session::SessionDao;
pub use user::UserDao;

/// The connections to the three stores.
#[derive(Clone)]
pub struct Stores {
    pub mysql: mysql::MysqlPool,
    pub redis: redis::RedisPool,
    pub mongo: mongodb::Database,
}

impl Stores {
    /// Connects to the three stores and prepares them: creates the MySQL database if missing and
    /// applies the embedded migrations; creates the MongoDB indexes. Safe to run from several
    /// processes at once.
    pub async fn connect(settings: &Settings) -> DaoResult<Stores> {
        let mysql = mysql::connect(&settings.mysql).await?;
        let redis = redis::connect(&settings.redis)?;
        let mongo = mongo::connect(&settings.mongo).await?;
        message::MessageDao::new(&mongo, settings.mongo.timeout_ms).ensure_indexes().await?;
        conversation::ConversationDao::new(&mongo, settings.mongo.timeout_ms).ensure_indexes().await?;
        Ok(Stores { mysql, redis, mongo })
    }

    /// Closes the pools. Pending operations finish; new ones fail.
    pub fn close(&self) {
        self.mysql.close();
        self.redis.close();
    }
}

/// One DAO per store concern.
#[derive(Clone)]
pub struct DaoGroup {
    pub user: UserDao,
    pub session: SessionDao,
    pub presence: PresenceDao,
    pub limit: LimitDao,
    pub message: MessageDao,
    pub conversation: ConversationDao,
    pub health: HealthDao,
}

impl DaoGroup {
    pub fn new(stores: &Stores, settings: &Settings) -> DaoGroup {
        let keys = redis::Keys::new(&settings.redis.key_prefix);
        let redis_timeout = settings.redis.timeout_ms;
        DaoGroup {
            user: UserDao::new(stores.mysql.clone(), settings.mysql.timeout_ms),
            session: SessionDao::new(stores.redis.clone(), keys.clone(), redis_timeout),
            presence: PresenceDao::new(stores.redis.clone(), keys.clone(), redis_timeout),
            limit: LimitDao::new(stores.redis.clone(), keys, redis_timeout),
            message: MessageDao::new(&stores.mongo, settings.mongo.timeout_ms),
            conversation: ConversationDao::new(&stores.mongo, settings.mongo.timeout_ms),
            health: HealthDao::new(stores.clone(), settings),
        }
    }
}
