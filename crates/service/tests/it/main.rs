//! chat-service against the real stores; each test has its own databases and key prefix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chat;
mod register;

use chat_dao::{DaoGroup, Stores};
use chat_model::Settings;
use chat_service::ServiceGroup;
use chat_testkit::{TestStores, test_logger};

pub struct Env {
    pub ts: TestStores,
    pub stores: Stores,
    pub daos: DaoGroup,
    pub services: ServiceGroup,
}

impl Env {
    pub async fn new() -> Env {
        Self::with(|_| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut Settings)) -> Env {
        let mut ts = TestStores::new();
        tweak(&mut ts.settings);
        let stores = Stores::connect(&ts.settings).await.expect("stores connect");
        let daos = DaoGroup::new(&stores, &ts.settings);
        let services = ServiceGroup::new(&daos, &ts.settings, &test_logger());
        Env { ts, stores, daos, services }
    }

    /// Registers two users: in a fresh database their ids are 1 and 2.
    pub async fn two_users(&self) {
        for name in ["user_one", "user_two"] {
            let req = chat_model::RegisterRequest {
                nick_name: "Nick".into(),
                user_name: name.into(),
                password: "password-1".into(),
            };
            self.services.register.register(req).await.expect("register");
        }
    }

    /// A second process on the same stores: its own hub and seq cache.
    pub fn second_process(&self) -> ServiceGroup {
        ServiceGroup::new(&self.daos, &self.ts.settings, &test_logger())
    }

    /// A process whose MongoDB does not answer (MySQL and Redis are this env's), with
    /// `tweak` applied to its settings.
    pub async fn with_mongo_down(&self, tweak: impl FnOnce(&mut Settings)) -> ServiceGroup {
        let mut broken = self.ts.settings.clone();
        broken.mongo.url = "mongodb://127.0.0.1:1".into();
        tweak(&mut broken);
        let stores = Stores { mongo: chat_dao::mongo::connect(&broken.mongo).await.unwrap(), ..self.stores.clone() };
        let daos = DaoGroup::new(&stores, &broken);
        ServiceGroup::new(&daos, &broken, &test_logger())
    }
}
