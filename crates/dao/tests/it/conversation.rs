use bson::DateTime;

use crate::daos;

#[tokio::test]
async fn record_keeps_the_highest_seq_and_time_and_lists_newest_first() {
    let (_ts, _stores, daos) = daos().await;
    let c = &daos.conversation;
    let t = |ms: i64| DateTime::from_millis(1_700_000_000_000 + ms);
    c.record("1:2", [1, 2], 1, t(10)).await.unwrap();
    c.record("1:2", [1, 2], 3, t(30)).await.unwrap();
    // a record arriving late never lowers what is there
    c.record("1:2", [1, 2], 2, t(20)).await.unwrap();
    c.record("1:3", [1, 3], 1, t(40)).await.unwrap();
    c.record("2:3", [2, 3], 1, t(50)).await.unwrap();
    let last = c.last_seqs(&["1:2".into(), "9:9".into()]).await.unwrap();
    assert_eq!(last.get("1:2"), Some(&3));
    assert_eq!(last.get("9:9"), None);
    let list = c.list_for(1, 10).await.unwrap();
    assert_eq!(list.iter().map(|s| (s.conv.as_str(), s.last_seq)).collect::<Vec<_>>(), vec![("1:3", 1), ("1:2", 3)]);
    assert_eq!(list[1].users, vec![1, 2]);
    assert_eq!(list[1].last_at, t(30));
    assert_eq!(c.list_for(1, 1).await.unwrap().len(), 1);
    assert!(c.list_for(7, 10).await.unwrap().is_empty());
}
