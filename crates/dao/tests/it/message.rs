use bson::{DateTime, oid::ObjectId};
use chat_dao::DaoError;
use chat_model::{MessageDoc, conversation_id};

use crate::daos;

fn msg(from: i64, to: i64, seq: i64, cmid: Option<&str>) -> MessageDoc {
    let now = DateTime::now();
    MessageDoc {
        id: ObjectId::new(),
        conv: conversation_id(from as u64, to as u64),
        seq,
        from,
        to,
        content: format!("m{seq}"),
        created_at: now,
        expire_at: DateTime::from_millis(now.timestamp_millis() + 3_600_000),
        read: false,
        delivered: false,
        client_msg_id: cmid.map(String::from),
    }
}

#[tokio::test]
async fn conv_seq_and_client_msg_id_are_unique() {
    let (_ts, _stores, daos) = daos().await;
    let m = &daos.message;
    m.insert(&msg(1, 2, 1, None)).await.unwrap();
    m.insert(&msg(2, 1, 2, None)).await.unwrap();
    assert!(matches!(m.insert(&msg(2, 1, 2, None)).await, Err(DaoError::Duplicate)));
    m.insert(&msg(1, 2, 3, Some("c1"))).await.unwrap();
    assert!(matches!(m.insert(&msg(1, 2, 4, Some("c1"))).await, Err(DaoError::Duplicate)));
    // the same client id from another sender is another message
    m.insert(&msg(2, 1, 4, Some("c1"))).await.unwrap();
    assert_eq!(m.find_by_client_msg_ids(&[(1, "c1".into())]).await.unwrap()[0].seq, 3);
    assert!(m.find_by_client_msg_ids(&[(1, "c2".into())]).await.unwrap().is_empty());
    let last = m.last_seqs(&["1:2".into(), "1:3".into()]).await.unwrap();
    assert_eq!(last.get("1:2"), Some(&4));
    assert_eq!(last.get("1:3"), None);
    assert_eq!(m.count("1:2").await.unwrap(), 4);
}

#[tokio::test]
async fn history_pages_newest_first() {
    let (_ts, _stores, daos) = daos().await;
    for seq in 1..=25 {
        let (f, t) = if seq % 2 == 0 { (1, 2) } else { (2, 1) };
        daos.message.insert(&msg(f, t, seq, None)).await.unwrap();
    }
    daos.message.insert(&msg(1, 3, 1, None)).await.unwrap();
    let page: Vec<i64> = daos.message.history("1:2", None, 10).await.unwrap().iter().map(|m| m.seq).collect();
    assert_eq!(page, (16..=25).rev().collect::<Vec<_>>());
    let page: Vec<i64> = daos.message.history("1:2", Some(6), 10).await.unwrap().iter().map(|m| m.seq).collect();
    assert_eq!(page, vec![5, 4, 3, 2, 1]);
    assert!(daos.message.history("1:2", Some(1), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn unread_then_mark_read_only_for_the_recipient() {
    let (_ts, _stores, daos) = daos().await;
    let a = msg(1, 2, 1, None);
    let b = msg(2, 1, 2, None);
    let mut c = msg(1, 2, 3, None);
    c.read = true;
    for m in [&a, &b, &c] {
        daos.message.insert(m).await.unwrap();
    }
    let unread = daos.message.unread("1:2").await.unwrap();
    assert_eq!(unread.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2]);
    let later = DateTime::from_millis(DateTime::now().timestamp_millis() + 10_000_000);
    let ids: Vec<ObjectId> = unread.iter().map(|m| m.id).collect();
    // user 2 reads: only the message sent to 2 changes
    assert_eq!(daos.message.mark_read(&ids, 2, later).await.unwrap(), 1);
    let a2 = daos.message.get(a.id).await.unwrap().unwrap();
    assert!(a2.read);
    assert_eq!(a2.expire_at, later);
    assert!(!daos.message.get(b.id).await.unwrap().unwrap().read);
    assert_eq!(daos.message.unread("1:2").await.unwrap().len(), 1);
}

#[tokio::test]
async fn indexes_are_created_idempotently() {
    let (_ts, _stores, daos) = daos().await;
    daos.message.ensure_indexes().await.unwrap();
    daos.message.ensure_indexes().await.unwrap();
}

#[tokio::test]
async fn unread_counts_per_conversation_and_messages_by_position() {
    let (_ts, _stores, daos) = daos().await;
    let m = &daos.message;
    m.insert(&msg(2, 1, 1, None)).await.unwrap();
    m.insert(&msg(2, 1, 2, None)).await.unwrap();
    m.insert(&msg(1, 2, 3, None)).await.unwrap();
    m.insert(&msg(3, 1, 1, None)).await.unwrap();
    let mut read = msg(3, 1, 2, None);
    read.read = true;
    m.insert(&read).await.unwrap();
    let counts = m.unread_counts(1).await.unwrap();
    assert_eq!(counts.get("1:2"), Some(&2));
    assert_eq!(counts.get("1:3"), Some(&1));
    assert_eq!(counts.len(), 2);
    assert!(m.unread_counts(9).await.unwrap().is_empty());
    let mut found = m.find_at(&[("1:2".into(), 3), ("1:3".into(), 2), ("1:9".into(), 1)]).await.unwrap();
    found.sort_by(|a, b| a.conv.cmp(&b.conv));
    assert_eq!(found.iter().map(|d| (d.conv.as_str(), d.seq)).collect::<Vec<_>>(), vec![("1:2", 3), ("1:3", 2)]);
}
