//! chat-service against the real stores; each test has its own databases and key prefix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chat;
mod commit;
mod groups;
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
            self.services.register.register(req, None).await.expect("register");
        }
    }

    /// Runs a statement on this test's MySQL database.
    pub async fn sql(&self, statement: &str) {
        use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
        let mut c = diesel_async::AsyncMysqlConnection::establish(&self.ts.settings.mysql.url).await.unwrap();
        diesel::sql_query(statement).execute(&mut c).await.unwrap();
    }

    /// A process whose MongoDB is reached through `proxy` (MySQL and Redis are this env's).
    pub async fn behind(
        &self,
        proxy: &chat_testkit::proxy::FaultProxy,
        tweak: impl FnOnce(&mut Settings),
    ) -> ServiceGroup {
        let mut s = self.ts.settings.clone();
        s.mongo.url = format!("mongodb://{}/?directConnection=true&heartbeatFrequencyMS=500", proxy.addr);
        tweak(&mut s);
        let stores = Stores { mongo: chat_dao::mongo::connect(&s.mongo).await.unwrap(), ..self.stores.clone() };
        ServiceGroup::new(&DaoGroup::new(&stores, &s), &s, &test_logger())
    }

    /// The address of this test's MongoDB server.
    pub fn mongo_addr(&self) -> std::net::SocketAddr {
        let url = &self.ts.settings.mongo.url;
        let hostport = url.trim_start_matches("mongodb://").split(['/', '?']).next().unwrap();
        std::net::ToSocketAddrs::to_socket_addrs(hostport).unwrap().next().unwrap()
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
