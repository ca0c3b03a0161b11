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
    three_users(&env).await;
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

async fn three_users(env: &Env) {
    env.two_users().await;
    let req = chat_model::RegisterRequest {
        nick_name: "Nick".into(),
        user_name: "user_three".into(),
        password: "password-3".into(),
    };
    env.services.register.register(req, None).await.unwrap();
}

fn actions(history: &[chat_model::ChatMessage]) -> Vec<String> {
    let mut h: Vec<_> = history.iter().filter_map(|m| Some((m.seq, m.event.as_ref()?.action))).collect();
    h.sort_by_key(|(seq, _)| *seq);
    h.iter().map(|(_, a)| serde_json::to_value(a).unwrap().as_str().unwrap().to_string()).collect()
}

/// MongoDB is down when the change is made: the change is written (with its event), the request
/// succeeds, and the event is recorded once MongoDB answers — the added member joins at its seq.
#[tokio::test]
async fn a_change_whose_message_could_not_be_written_is_recorded_later() {
    let env = Env::new().await;
    three_users(&env).await;
    let group = env.services.group.create(1, "outbox", &[2]).await.unwrap().id;
    let broken = env.with_mongo_down(|s| s.mongo.timeout_ms = 300).await;
    let view = broken.group.add(1, group, &[3]).await.unwrap();
    assert_eq!(view.members.unwrap().len(), 2, "user 3 is not a member until the change is recorded");
    // this process's worker records it (the broken one keeps failing, harmlessly)
    let history = chat_testkit::poll_until(
        Duration::from_secs(10),
        || async { env.services.chat.history(1, Target::Group(group), None, Some(50)).await.unwrap() },
        |h| h.len() == 2,
    )
    .await;
    assert_eq!(actions(&history), ["created", "added"]);
    let added = history.iter().find(|m| m.seq == 2).unwrap();
    assert_eq!(added.event.as_ref().unwrap().users, [3]);
    let joined = chat_testkit::poll_until(
        Duration::from_secs(5),
        || async { env.services.group.get(1, group).await.unwrap() },
        |v| v.members.as_ref().unwrap().len() == 3,
    )
    .await;
    assert_eq!(joined.members.unwrap().iter().find(|m| m.id == 3).unwrap().join_seq, 2);
    env.services.chat.send(3, Target::Group(group), "now a member".into(), None, None).await.unwrap();
    // recorded once, however many times it was tried
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let history = env.services.chat.history(1, Target::Group(group), None, Some(50)).await.unwrap();
    assert_eq!(actions(&history), ["created", "added"]);
}

/// Changes of one group are decided one at a time on the group as it is: the last two members
/// leaving at once dissolve it (neither sees the other stay), and an owner handing over to a
/// member who leaves at the same moment never leaves the group without an owner.
#[tokio::test]
async fn concurrent_changes_of_one_group_are_decided_one_at_a_time() {
    let env = Env::new().await;
    three_users(&env).await;
    for _ in 0..5 {
        let g = env.services.group.create(1, "race", &[2]).await.unwrap().id;
        let (a, b) = (env.services.group.clone(), env.services.group.clone());
        let (x, y) = tokio::join!(a.remove(1, g, 1), b.remove(2, g, 2));
        x.unwrap();
        y.unwrap();
        assert!(matches!(env.services.group.get(1, g).await, Err(ServiceError::GroupNotFound)), "dissolved");

        let g = env.services.group.create(1, "handover", &[2, 3]).await.unwrap().id;
        let (a, b) = (env.services.group.clone(), env.services.group.clone());
        let (x, y) = tokio::join!(a.transfer(1, g, 2), b.remove(2, g, 2));
        let view = env.services.group.get(3, g).await.unwrap();
        let members = view.members.unwrap();
        assert!(
            members.iter().any(|m| m.id == view.owner && m.role == chat_model::group::Role::Owner),
            "{x:?} {y:?}: owner {} among {members:?}",
            view.owner
        );
    }
}
