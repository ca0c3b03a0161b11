use bson::DateTime;
use chat_dao::{ConvState, SummaryUpdate};

use crate::daos;

fn update(conv: &str, users: [i64; 2], seq: i64, at: DateTime, senders: &[i64]) -> SummaryUpdate {
    SummaryUpdate { conv: conv.into(), users: Some(users), seq, at, senders: senders.to_vec() }
}

#[tokio::test]
async fn record_keeps_the_highest_seq_and_time_and_lists_newest_first() {
    let (_ts, _stores, daos) = daos().await;
    let c = &daos.conversation;
    let t = |ms: i64| DateTime::from_millis(1_700_000_000_000 + ms);
    c.record(&[update("1:2", [1, 2], 1, t(10), &[1])]).await.unwrap();
    c.record(&[update("1:2", [1, 2], 3, t(30), &[1]), update("1:3", [1, 3], 1, t(40), &[3])]).await.unwrap();
    // a record arriving late never lowers what is there; recording twice changes nothing
    c.record(&[update("1:2", [1, 2], 2, t(20), &[2]), update("2:3", [2, 3], 1, t(50), &[2])]).await.unwrap();
    c.record(&[update("2:3", [2, 3], 1, t(50), &[2])]).await.unwrap();
    assert_eq!(c.state("1:2").await.unwrap(), ConvState { last_seq: 3, senders: vec![1, 2] });
    assert_eq!(c.state("9:9").await.unwrap(), ConvState::default());
    let list = c.list_for(1, 10).await.unwrap();
    assert_eq!(list.iter().map(|s| (s.conv.as_str(), s.last_seq)).collect::<Vec<_>>(), vec![("1:3", 1), ("1:2", 3)]);
    assert_eq!(list[1].users, vec![1, 2]);
    assert_eq!(list[1].last_at, t(30));
    assert_eq!(c.list_for(1, 1).await.unwrap().len(), 1);
    assert!(c.list_for(7, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn read_positions_only_grow_and_stop_at_the_last_seq() {
    let (_ts, _stores, daos) = daos().await;
    let c = &daos.conversation;
    assert_eq!(c.advance("1:2", 1, 3).await.unwrap(), None, "no conversation yet");
    c.record(&[update("1:2", [1, 2], 5, DateTime::now(), &[1])]).await.unwrap();
    // the sender has seen what it sent
    c.advance_many(&[("1:2", 1, 5)]).await.unwrap();
    // many at once: only forwards
    c.advance_many(&[("1:2", 2, 2), ("1:2", 1, 1)]).await.unwrap();
    assert_eq!(c.read_positions("1:2").await.unwrap(), [(1, 5), (2, 2)].into_iter().collect());
    assert_eq!(c.advance("1:2", 2, 3).await.unwrap(), Some((2, 3)));
    assert_eq!(c.advance("1:2", 2, 1).await.unwrap(), Some((3, 3)), "never backwards");
    assert_eq!(c.advance("1:2", 2, 99).await.unwrap(), Some((3, 5)), "clamped to the last seq");
    let read = c.read_positions("1:2").await.unwrap();
    assert_eq!(read, [(1, 5), (2, 5)].into_iter().collect());
    let list = c.list_for(2, 10).await.unwrap();
    assert_eq!((list[0].read_seq(1), list[0].read_seq(2), list[0].read_seq(7)), (5, 5, 0));
}
