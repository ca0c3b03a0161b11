//! Readiness: the send path works — MongoDB answers and every worker runs —, the node hears
//! the others (unless Redis is down for every node alike), and the process is not shutting
//! down. MySQL and Redis are reported too, as degraded: without them, chats
//! in progress go on (new logins and connections need MySQL; Redis holds only caches and
//! counters), so a load balancer should not take every node out for them.

pub use chat_dao::Store;
use chat_dao::{DaoGroup, HealthDao};

use crate::{cluster::Delivery, workers::Workers};

#[derive(Clone)]
pub struct HealthService {
    dao: HealthDao,
    workers: Workers,
    delivery: Delivery,
}

/// What keeps the process from being ready.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    /// The stores that do not answer.
    pub stores: Vec<Store>,
    /// The workers that are down (being restarted).
    pub workers: Vec<String>,
    /// The node's pub/sub subscription is up (it hears the other nodes).
    pub hears_other_nodes: bool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        !self.stores.contains(&Store::Mongo) && self.workers.is_empty() && !self.deaf_alone()
    }

    /// Redis answers but this node's subscription does not: the other nodes can serve its
    /// users. (With Redis down every node is deaf alike, and taking them all out would help
    /// nobody.)
    pub fn deaf_alone(&self) -> bool {
        !self.hears_other_nodes && !self.stores.contains(&Store::Redis)
    }
}

impl HealthService {
    pub(crate) fn new(daos: &DaoGroup, workers: Workers, delivery: Delivery) -> Self {
        HealthService { dao: daos.health.clone(), workers, delivery }
    }

    /// The stores that do not answer (asked at once), the workers that are down, and whether
    /// the node hears the others.
    pub async fn check(&self) -> Readiness {
        let (m, r, g) =
            tokio::join!(self.dao.ping(Store::Mysql), self.dao.ping(Store::Redis), self.dao.ping(Store::Mongo));
        let stores = [(Store::Mysql, m), (Store::Redis, r), (Store::Mongo, g)]
            .into_iter()
            .filter_map(|(s, r)| r.is_err().then_some(s))
            .collect();
        Readiness { stores, workers: self.workers.down(), hears_other_nodes: self.delivery.is_listening() }
    }
}
