use chat_dao::{DaoError, Store, Stores, mysql};
use chat_model::{NewUser, user::STATUS_ACTIVE};

use crate::daos;

pub fn new_user(name: &str) -> NewUser {
    NewUser {
        user_name: name.into(),
        nick_name: "Nick".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        avatar: String::new(),
        status: STATUS_ACTIVE,
    }
}

#[tokio::test]
async fn insert_then_find_by_name_and_id() {
    let (_ts, _stores, daos) = daos().await;
    let id = daos.user.insert(&new_user("alice_1")).await.unwrap();
    let second = daos.user.insert(&new_user("bob_22")).await.unwrap();
    assert!(second > id);
    let u = daos.user.find_by_name("alice_1").await.unwrap().unwrap();
    assert_eq!(u.id, id);
    assert_eq!(u.nick_name, "Nick");
    assert_eq!(u.status, STATUS_ACTIVE);
    assert_eq!(daos.user.find_by_id(id).await.unwrap().unwrap().user_name, "alice_1");
    assert!(daos.user.find_by_id(id + 1000).await.unwrap().is_none());
    assert!(daos.user.find_by_name("nobody").await.unwrap().is_none());
}

#[tokio::test]
async fn user_names_are_unique_without_regard_to_case() {
    let (_ts, _stores, daos) = daos().await;
    daos.user.insert(&new_user("Carol")).await.unwrap();
    assert!(matches!(daos.user.insert(&new_user("Carol")).await, Err(DaoError::Duplicate)));
    assert!(matches!(daos.user.insert(&new_user("carol")).await, Err(DaoError::Duplicate)));
    assert_eq!(daos.user.find_by_name("CAROL").await.unwrap().unwrap().user_name, "Carol");
}

#[tokio::test]
async fn migrations_run_twice_without_harm() {
    let (ts, _stores, daos) = daos().await;
    daos.user.insert(&new_user("dave_1")).await.unwrap();
    // a second process starting against the same database
    let again = Stores::connect(&ts.settings).await.unwrap();
    let daos2 = chat_dao::DaoGroup::new(&again, &ts.settings);
    assert!(daos2.user.find_by_name("dave_1").await.unwrap().is_some());
}

#[tokio::test]
async fn a_database_that_is_down_is_an_error_naming_mysql() {
    let (ts, stores, _daos) = daos().await;
    let mut settings = ts.settings.clone();
    settings.mysql.url = "mysql://root@127.0.0.1:1/nowhere".into();
    settings.mysql.timeout_ms = 500;
    let broken = Stores { mysql: mysql::pool(&settings.mysql).unwrap(), ..stores.clone() };
    let dao = chat_dao::DaoGroup::new(&broken, &settings).user;
    let err = dao.find_by_name("x").await.unwrap_err();
    assert_eq!(err.store(), Some(Store::Mysql));
}

#[tokio::test]
async fn find_by_ids_returns_the_existing_ones() {
    let (_ts, _stores, daos) = daos().await;
    let a = daos.user.insert(&new_user("erin_01")).await.unwrap();
    let b = daos.user.insert(&new_user("frank_01")).await.unwrap();
    let mut found: Vec<u64> = daos.user.find_by_ids(&[a, b, b + 50]).await.unwrap().iter().map(|u| u.id).collect();
    found.sort_unstable();
    assert_eq!(found, vec![a, b]);
    assert!(daos.user.find_by_ids(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn active_among_leaves_out_disabled_deleted_and_unknown_users() {
    let (ts, _stores, daos) = daos().await;
    let a = daos.user.insert(&new_user("active_1")).await.unwrap();
    let b = daos.user.insert(&new_user("disabled_1")).await.unwrap();
    let c = daos.user.insert(&new_user("deleted_1")).await.unwrap();
    let url = &ts.settings.mysql.url;
    let mut conn = <diesel_async::AsyncMysqlConnection as diesel_async::AsyncConnection>::establish(url).await.unwrap();
    use diesel_async::RunQueryDsl as _;
    diesel::sql_query(format!("UPDATE users SET status = 0 WHERE id = {b}")).execute(&mut conn).await.unwrap();
    diesel::sql_query(format!("UPDATE users SET deleted_at = NOW() WHERE id = {c}")).execute(&mut conn).await.unwrap();
    assert_eq!(daos.user.active_among(&[a, b, c, c + 100]).await.unwrap(), vec![a]);
}
