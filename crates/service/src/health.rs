//! Readiness: each store answers, or the name of the first that does not.

use chat_dao::{DaoGroup, HealthDao, Store};

#[derive(Clone)]
pub struct HealthService {
    dao: HealthDao,
}

impl HealthService {
    pub fn new(daos: &DaoGroup) -> Self {
        HealthService { dao: daos.health.clone() }
    }

    /// The stores that do not answer (empty when ready). The three are asked at once.
    pub async fn unready(&self) -> Vec<Store> {
        let (m, r, g) =
            tokio::join!(self.dao.ping(Store::Mysql), self.dao.ping(Store::Redis), self.dao.ping(Store::Mongo));
        [(Store::Mysql, m), (Store::Redis, r), (Store::Mongo, g)]
            .into_iter()
            .filter_map(|(s, r)| r.is_err().then_some(s))
            .collect()
    }
}
