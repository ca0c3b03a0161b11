use crate::daos;

#[tokio::test]
async fn session_lives_until_deleted() {
    let (_ts, _stores, daos) = daos().await;
    daos.session.create("hash1", 42, 60).await.unwrap();
    assert_eq!(daos.session.user_of("hash1").await.unwrap(), Some(42));
    let ttl = daos.session.ttl("hash1").await.unwrap();
    assert!((1..=60).contains(&ttl), "ttl {ttl}");
    assert!(daos.session.delete("hash1").await.unwrap());
    assert_eq!(daos.session.user_of("hash1").await.unwrap(), None);
    assert!(!daos.session.delete("hash1").await.unwrap());
}

#[tokio::test]
async fn presence_counts_live_connections() {
    let (_ts, _stores, daos) = daos().await;
    assert_eq!(daos.presence.live_connections(7).await.unwrap(), 0);
    daos.presence.refresh(7, "node-a:1", 60).await.unwrap();
    daos.presence.refresh(7, "node-a:2", 60).await.unwrap();
    daos.presence.refresh(7, "node-a:2", 60).await.unwrap();
    assert_eq!(daos.presence.live_connections(7).await.unwrap(), 2);
    daos.presence.remove(7, "node-a:1").await.unwrap();
    assert_eq!(daos.presence.live_connections(7).await.unwrap(), 1);
    assert_eq!(daos.presence.live_connections(8).await.unwrap(), 0);
}

#[tokio::test]
async fn presence_of_a_crashed_process_lapses() {
    let (_ts, _stores, daos) = daos().await;
    daos.presence.refresh(9, "dead-node:1", 1).await.unwrap();
    assert_eq!(daos.presence.live_connections(9).await.unwrap(), 1);
    // nobody refreshes it: after its ttl it no longer counts
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(daos.presence.live_connections(9).await.unwrap(), 0);
}
