//! Whether each store answers, for `/readyz`.

use chat_model::Settings;
use deadpool_redis::redis;
use diesel_async::RunQueryDsl as _;

use crate::{
    Stores,
    error::{Calls, DaoResult, Store},
    mysql::conn,
};

#[derive(Clone)]
pub struct HealthDao {
    stores: Stores,
    timeout_ms: u64,
}

impl HealthDao {
    fn calls(&self, store: Store) -> Calls {
        Calls::new(store, self.timeout_ms, &self.stores.metrics)
    }
}

impl HealthDao {
    pub fn new(stores: Stores, settings: &Settings) -> Self {
        // readiness must answer quickly even when a store hangs
        let timeout_ms =
            settings.mysql.timeout_ms.min(settings.redis.timeout_ms).min(settings.mongo.timeout_ms).min(2000);
        HealthDao { stores, timeout_ms }
    }

    pub async fn ping(&self, store: Store) -> DaoResult<()> {
        let calls = self.calls(store);
        match store {
            Store::Mysql => {
                calls
                    .run(async {
                        let mut c = conn(&self.stores.mysql).await?;
                        diesel::sql_query("SELECT 1").execute(&mut c).await?;
                        Ok::<_, crate::DaoError>(())
                    })
                    .await
            }
            Store::Redis => {
                calls
                    .run(async {
                        let mut c = self.stores.redis.get().await?;
                        redis::cmd("PING").query_async::<String>(&mut *c).await?;
                        Ok::<_, crate::DaoError>(())
                    })
                    .await
            }
            Store::Mongo => calls.run(self.stores.mongo.run_command(bson::doc! { "ping": 1 })).await.map(|_| ()),
        }
    }
}
