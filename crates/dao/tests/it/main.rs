//! chat-dao against the real stores; each test has its own database, Mongo database and Redis prefix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conversation;
mod group;
mod message;
mod session_presence;
mod user;

use chat_dao::{DaoGroup, Stores};
use chat_testkit::TestStores;

/// Isolated stores, connected and migrated. Keep the `TestStores` alive for the whole test.
pub async fn daos() -> (TestStores, Stores, DaoGroup) {
    let ts = TestStores::new();
    let stores = Stores::connect(&ts.settings).await.expect("stores connect (are MySQL, Redis, MongoDB up?)");
    let daos = DaoGroup::new(&stores, &ts.settings);
    (ts, stores, daos)
}
