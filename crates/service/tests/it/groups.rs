//! Groups in the service: the membership cache follows the changes made through its process at
//! once, those made elsewhere within its ttl, and goes on serving through a MySQL outage.

use std::time::Duration;

use chat_model::Target;
use chat_service::{ServiceError, ServiceGroup};
use chat_testkit::{
    proxy::{FaultProxy, Mode},
    test_logger,
};

use crate::Env;

/// A second process whose MySQL is reached through `proxy`, its cache trusting a load for 1 s.
fn behind_mysql(env: &Env, proxy: &FaultProxy) -> ServiceGroup {
    let mut s = env.ts.settings.clone();
    let db = s.mysql.url.rsplit('/').next().unwrap().to_string();
    s.mysql.url = format!("mysql://root@{}/{db}", proxy.addr);
    s.mysql.timeout_ms = 500;
    s.group.cache_ttl_secs = 1;
    let stores = chat_dao::Stores { mysql: chat_dao::mysql::pool(&s.mysql).unwrap(), ..env.stores.clone() };
    ServiceGroup::new(&chat_dao::DaoGroup::new(&stores, &s), &s, &test_logger())
}

fn mysql_addr(env: &Env) -> std::net::SocketAddr {
    let url = &env.ts.settings.mysql.url;
    let hostport = url.split('@').nth(1).unwrap().split('/').next().unwrap();
    std::net::ToSocketAddrs::to_socket_addrs(hostport).unwrap().next().unwrap()
}

#[tokio::test]
async fn the_membership_cache_follows_changes_and_outlives_a_mysql_outage() {
    let env = Env::new().await;
    env.two_users().await;
    let req = chat_model::RegisterRequest {
        nick_name: "Nick".into(),
        user_name: "user_three".into(),
        password: "password-3".into(),
    };
    env.services.register.register(req, None).await.unwrap();
    let group = env.services.group.create(1, "cache", &[2, 3]).await.unwrap().id;
    let say = |s: &ServiceGroup, from: u64, text: &str| {
        let chat = s.chat.clone();
        let text = text.to_string();
        async move { chat.send(from, Target::Group(group), text, None, None).await }
    };
    let proxy = FaultProxy::start(mysql_addr(&env)).await.unwrap();
    let other = behind_mysql(&env, &proxy);
    say(&other, 3, "loads the group").await.unwrap();

    // MySQL unreachable for the other process: what it loaded goes on serving past its ttl
    proxy.set(Mode::Refuse);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    say(&other, 3, "served from the cache").await.unwrap();

    // a removal through this process is seen here at once
    env.services.group.remove(1, group, 3).await.unwrap();
    assert!(matches!(say(&env.services, 3, "gone?").await, Err(ServiceError::NotMember)));
    // and by the other process once it can read MySQL again and its ttl has passed
    proxy.set(Mode::Pass);
    let refused = chat_testkit::poll_until(
        Duration::from_secs(10),
        || say(&other, 3, "still in?"),
        |r| matches!(r, Err(ServiceError::NotMember)),
    )
    .await;
    assert!(matches!(refused, Err(ServiceError::NotMember)), "{refused:?}");
    // what the removed member sent before it was seen there, and nothing after
    let history = env.services.chat.history(1, Target::Group(group), None, Some(50)).await.unwrap();
    let texts: Vec<&str> = history.iter().filter(|m| m.kind.is_none()).map(|m| m.content.as_str()).collect();
    assert!(texts.contains(&"served from the cache") && !texts.contains(&"gone?"), "{texts:?}");
    // an unknown group is no member's
    assert!(matches!(
        env.services.chat.send(1, Target::Group(group + 99), "x".into(), None, None).await,
        Err(ServiceError::GroupNotFound)
    ));
}
