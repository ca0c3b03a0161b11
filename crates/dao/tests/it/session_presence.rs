use chat_dao::{Admission, DaoGroup, Verdict, throttle::Counter};
use chat_model::{NewUser, user::STATUS_ACTIVE};

use crate::daos;

async fn a_user(daos: &DaoGroup, name: &str) -> u64 {
    let new = NewUser {
        user_name: name.into(),
        nick_name: "Nick".into(),
        password_hash: "x".into(),
        avatar: String::new(),
        status: STATUS_ACTIVE,
    };
    daos.user.insert(&new).await.unwrap()
}

/// Deletes the session's cache entry, as a Redis restart would.
async fn forget_cache(ts: &chat_testkit::TestStores, hash: &str) {
    let client = redis::Client::open(ts.settings.redis.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL").arg(format!("{}:session:{hash}", ts.name())).query_async(&mut c).await.unwrap();
}

#[tokio::test]
async fn session_lives_in_mysql_until_deleted_and_the_cache_refills() {
    let (ts, _stores, daos) = daos().await;
    let user = a_user(&daos, "alice_01").await;
    daos.session.create("hash1", user, 3600).await.unwrap();
    assert_eq!(daos.session.user_of("hash1").await.unwrap(), Some(user));
    let ttl = daos.session.cache_ttl("hash1").await.unwrap();
    assert!((1..=chat_dao::session::CACHE_TTL_SECS as i64).contains(&ttl), "cache ttl {ttl}");
    // the cache is lost: MySQL still knows, and the cache is filled again
    forget_cache(&ts, "hash1").await;
    assert_eq!(daos.session.cache_ttl("hash1").await.unwrap(), -2);
    assert_eq!(daos.session.user_of("hash1").await.unwrap(), Some(user));
    assert!(daos.session.cache_ttl("hash1").await.unwrap() > 0);
    assert_eq!(daos.session.alive(&["hash1", "nope"]).await.unwrap().into_iter().collect::<Vec<_>>(), vec!["hash1"]);
    forget_cache(&ts, "hash1").await;
    assert_eq!(daos.session.alive(&["hash1"]).await.unwrap().len(), 1, "from MySQL");
    // and cached again: the next check needs no MySQL
    let ttl = daos.session.cache_ttl("hash1").await.unwrap();
    assert!((1..=chat_dao::session::CACHE_TTL_SECS as i64).contains(&ttl), "cache ttl after alive: {ttl}");
    assert!(daos.session.delete("hash1").await.unwrap());
    assert_eq!(daos.session.user_of("hash1").await.unwrap(), None);
    assert!(daos.session.alive(&["hash1"]).await.unwrap().is_empty());
    // and not from MySQL either, once the tombstone is gone
    forget_cache(&ts, "hash1").await;
    assert_eq!(daos.session.user_of("hash1").await.unwrap(), None);
    assert!(!daos.session.delete("hash1").await.unwrap());
}

#[tokio::test]
async fn expired_sessions_do_not_authenticate_and_are_deleted() {
    let (_ts, _stores, daos) = daos().await;
    let user = a_user(&daos, "bob_0001").await;
    daos.session.create("short", user, 1).await.unwrap();
    daos.session.create("long", user, 3600).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(daos.session.user_of("short").await.unwrap(), None);
    assert_eq!(daos.session.delete_expired(100).await.unwrap(), 1);
    assert_eq!(daos.session.user_of("long").await.unwrap(), Some(user));
}

#[tokio::test]
async fn presence_counts_live_connections_and_bounds_them() {
    let (_ts, _stores, daos) = daos().await;
    // node-a speaks; node-b is another node, alive while its lease is there
    let p = &daos.presence.for_node("node-a".into());
    daos.presence.for_node("node-b".into()).renew_lease("b", 60_000).await.unwrap();
    assert_eq!(p.live_connections(7).await.unwrap(), 0);
    assert_eq!(p.admit(7, "node-a:1", 60, 2).await.unwrap(), Admission::Admitted { first: true });
    assert_eq!(p.admit(7, "node-a:2", 60, 2).await.unwrap(), Admission::Admitted { first: false });
    assert_eq!(p.admit(7, "node-a:3", 60, 2).await.unwrap(), Admission::Full);
    // a member already in is refreshed, not refused
    assert_eq!(p.admit(7, "node-a:2", 60, 2).await.unwrap(), Admission::Admitted { first: false });
    p.refresh_many(&[(7, "node-a:2"), (8, "node-b:1")], 60).await.unwrap();
    assert_eq!(p.live_connections(7).await.unwrap(), 2);
    assert_eq!(p.online_among(&[7, 8, 9]).await.unwrap(), [7, 8].into_iter().collect());
    assert_eq!(p.remove(7, "node-a:1").await.unwrap(), 1, "one left");
    assert_eq!(p.live_connections(7).await.unwrap(), 1);
    assert_eq!(p.admit(7, "node-a:3", 60, 2).await.unwrap(), Admission::Admitted { first: false });
    assert_eq!(p.live_connections(8).await.unwrap(), 1);
    assert_eq!(p.remove(8, "node-b:1").await.unwrap(), 0, "the last one: offline");
}

#[tokio::test]
async fn presence_of_a_crashed_process_lapses() {
    let (_ts, _stores, daos) = daos().await;
    let live = daos.presence.for_node("live-node".into());
    let dead = daos.presence.for_node("dead-node".into());
    dead.renew_lease("dead", 60_000).await.unwrap();
    assert_eq!(dead.admit(9, "dead-node:1", 1, 1).await.unwrap(), Admission::Admitted { first: true });
    assert_eq!(live.live_connections(9).await.unwrap(), 1);
    // nobody refreshes it: after its ttl it no longer counts, nor takes a place
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(live.live_connections(9).await.unwrap(), 0);
    assert_eq!(live.admit(9, "live-node:1", 60, 1).await.unwrap(), Admission::Admitted { first: true });
}

#[tokio::test]
async fn the_connections_of_a_node_whose_lease_lapsed_are_gone_with_it() {
    let (_ts, _stores, daos) = daos().await;
    let here = daos.presence.for_node("here".into());
    let crashed = daos.presence.for_node("crashed".into());
    crashed.renew_lease("crashed", 400).await.unwrap();
    // its entries would last a minute; its lease, 0.4 s
    assert_eq!(crashed.admit(5, "crashed:1", 60, 1).await.unwrap(), Admission::Admitted { first: true });
    crashed.refresh_many(&[(6, "crashed:2")], 60).await.unwrap();
    assert_eq!(here.online_among(&[5, 6]).await.unwrap(), [5, 6].into_iter().collect());
    assert_eq!(crashed.live_connections(5).await.unwrap(), 1, "a node counts its own");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(here.online_among(&[5, 6]).await.unwrap().is_empty(), "gone with the lease");
    assert_eq!(here.live_connections(5).await.unwrap(), 0);
    // and it takes no place: the one allowed connection opens elsewhere, as the first
    assert_eq!(here.admit(5, "here:1", 60, 1).await.unwrap(), Admission::Admitted { first: true });
    // a node that stops gracefully ends its lease at once
    here.renew_lease("here", 60_000).await.unwrap();
    assert_eq!(crashed.live_connections(5).await.unwrap(), 1);
    here.release_lease().await.unwrap();
    assert_eq!(crashed.live_connections(5).await.unwrap(), 0);
}

#[tokio::test]
async fn throttle_counts_attempts_per_window_and_clears() {
    let (_ts, _stores, daos) = daos().await;
    let t = &daos.throttle;
    let ip = Counter { kind: "ip", subject: "10.0.0.1", limit: 3, window_secs: 60 };
    let account = Counter { kind: "login", subject: "alice", limit: 2, window_secs: 60 };
    assert_eq!(t.hit(&[ip.clone(), account.clone()]).await.unwrap(), Verdict::Allowed);
    assert_eq!(t.hit(&[ip.clone(), account.clone()]).await.unwrap(), Verdict::Allowed);
    match t.hit(&[ip.clone(), account.clone()]).await.unwrap() {
        Verdict::Limited { retry_after_secs } => assert!((1..=60).contains(&retry_after_secs)),
        other => panic!("expected the account's limit, got {other:?}"),
    }
    t.clear("login", "alice").await.unwrap();
    // the address has had 3 attempts: its fourth is refused, whatever the account
    assert!(matches!(t.hit(&[ip.clone(), account.clone()]).await.unwrap(), Verdict::Limited { .. }));
    let other_ip = Counter { subject: "10.0.0.2", ..ip };
    assert_eq!(t.hit(&[other_ip, account]).await.unwrap(), Verdict::Allowed, "the refused attempt was not counted");
}
