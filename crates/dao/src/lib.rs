//! `chat-dao`: the only crate that talks to MySQL, Redis and MongoDB.
//!
//! [`Stores`] holds the pools and clients (cheap handles); [`DaoGroup`] holds one data-access
//! struct per store concern, each a clone of the handle it needs. Every store call goes through
//! a deadline and has its failures counted ([`StoreMetrics`]).

pub mod bus;
pub mod conversation;
mod error;
pub mod group;
pub mod health;
pub mod kv;
pub mod message;
pub mod mongo;
pub mod mysql;
pub mod presence;
pub mod session;
pub mod throttle;
pub mod user;

use chat_model::Settings;

pub use bus::{BusDao, Subscription};
pub use conversation::{ConvState, ConversationDao, ConversationSummary, SummaryUpdate};
pub use error::{DaoError, DaoResult, Store, StoreMetrics};
pub use group::GroupDao;
pub use health::HealthDao;
pub use message::{InsertFailure, MessageDao};
pub use presence::{Admission, PresenceDao};
pub use session::SessionDao;
pub use throttle::{ThrottleDao, Verdict};
pub use user::UserDao;

/// The connections to the three stores.
#[derive(Clone)]
pub struct Stores {
    pub mysql: mysql::MysqlPool,
    pub redis: kv::RedisPool,
    pub mongo: mongodb::Database,
    pub metrics: StoreMetrics,
}

impl Stores {
    /// Connects to the three stores and prepares them: creates the MySQL database if missing and
    /// applies the embedded migrations; creates the MongoDB indexes. Safe to run from several
    /// processes at once.
    pub async fn connect(settings: &Settings) -> DaoResult<Stores> {
        let metrics = StoreMetrics::default();
        let mysql = mysql::connect(&settings.mysql).await?;
        let redis = kv::connect(&settings.redis)?;
        let mongo = mongo::connect(&settings.mongo).await?;
        message::MessageDao::new(&mongo, settings.mongo.timeout_ms, &metrics).ensure_indexes().await?;
        conversation::ConversationDao::new(&mongo, &settings.mongo, &metrics).ensure_indexes().await?;
        Ok(Stores { mysql, redis, mongo, metrics })
    }

    /// Connects to the three stores as they are: creates, migrates and indexes nothing (for the
    /// admin commands, which must not prepare a database a mistyped URL names, nor migrate one
    /// that older nodes use). A database that is not there fails the first call.
    pub async fn open(settings: &Settings) -> DaoResult<Stores> {
        let mysql = mysql::pool(&settings.mysql)?;
        let redis = kv::connect(&settings.redis)?;
        let mongo = mongo::connect(&settings.mongo).await?;
        Ok(Stores { mysql, redis, mongo, metrics: StoreMetrics::default() })
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
    pub group: GroupDao,
    pub session: SessionDao,
    pub presence: PresenceDao,
    pub bus: BusDao,
    pub throttle: ThrottleDao,
    pub message: MessageDao,
    pub conversation: ConversationDao,
    pub health: HealthDao,
    pub metrics: StoreMetrics,
}

impl DaoGroup {
    pub fn new(stores: &Stores, settings: &Settings) -> DaoGroup {
        let keys = kv::Keys::new(&settings.redis.key_prefix);
        let m = &stores.metrics;
        let redis = error::Calls::new(Store::Redis, settings.redis.timeout_ms, m);
        let mysql = error::Calls::new(Store::Mysql, settings.mysql.timeout_ms, m);
        DaoGroup {
            user: UserDao::new(stores.mysql.clone(), mysql.clone()),
            group: GroupDao::new(stores.mysql.clone(), mysql.clone()),
            session: SessionDao::new(stores.mysql.clone(), mysql, stores.redis.clone(), keys.clone(), redis.clone()),
            presence: PresenceDao::new(stores.redis.clone(), keys.clone(), redis.clone()),
            bus: BusDao::new(stores.redis.clone(), keys.clone(), redis.clone(), settings.redis.url.clone()),
            throttle: ThrottleDao::new(stores.redis.clone(), keys, redis),
            message: MessageDao::new(&stores.mongo, settings.mongo.timeout_ms, m),
            conversation: ConversationDao::new(&stores.mongo, &settings.mongo, m),
            health: HealthDao::new(stores.clone(), settings),
            metrics: m.clone(),
        }
    }
}
