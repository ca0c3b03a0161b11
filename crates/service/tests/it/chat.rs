use std::{collections::HashSet, time::Duration};

use chat_dao::Store;
use chat_model::{ReplyCode, ServerFrame};
use chat_service::ServiceError;
use chat_testkit::poll_until;

use crate::Env;

async fn send(env: &Env, from: u64, to: u64, text: &str) -> Result<chat_service::SendOutcome, ServiceError> {
    env.services.chat.send(from, to, text.into(), None, None).await
}

#[tokio::test]
async fn offline_peer_gets_the_message_as_unread() {
    let env = Env::new().await;
    let out = send(&env, 1, 2, "hello").await.unwrap();
    assert!(!out.delivered);
    assert_eq!(out.frame().code, ReplyCode::StoredOffline);
    assert_eq!((out.message.seq, out.message.from, out.message.to), (1, 1, 2));
    assert!(!out.message.read);
    // it is stored before the reply
    assert_eq!(env.services.chat.count(1, 2).await.unwrap(), 1);
    let unread = env.services.chat.unread(2, 1).await.unwrap();
    assert_eq!(unread.len(), 1);
    assert_eq!(unread[0].content, "hello");
    assert!(unread[0].read, "marked read for the reader");
    assert!(env.services.chat.unread(2, 1).await.unwrap().is_empty());
}

#[tokio::test]
async fn online_peer_gets_it_pushed_on_every_connection() {
    let env = Env::new().await;
    env.two_users().await;
    let chat = &env.services.chat;
    let mut tab1 = chat.connect(2, 1, "s2".into()).await.unwrap();
    let mut tab2 = chat.connect(2, 1, "s2".into()).await.unwrap();
    let mut sender_other_tab = chat.connect(1, 2, "s1".into()).await.unwrap();
    let sender_tab = chat.connect(1, 2, "s1".into()).await.unwrap();
    assert!(chat.is_online(2).await.unwrap());
    let out = chat.send(1, 2, "hi".into(), Some("c-1".into()), Some(sender_tab.conn_id)).await.unwrap();
    assert!(out.delivered);
    assert_eq!(out.frame().code, ReplyCode::Delivered);
    assert!(out.message.read, "stored as read, as the original did");
    for conn in [&mut tab1, &mut tab2, &mut sender_other_tab] {
        let frame: ServerFrame = serde_json::from_str(&conn.outbound.recv().await.unwrap().text).unwrap();
        assert_eq!(frame.code, ReplyCode::Incoming);
        assert_eq!(frame.message.as_ref().unwrap(), &out.message);
    }
    chat.disconnect(&mut tab1, None).await;
    chat.disconnect(&mut tab2, None).await;
    assert!(!chat.is_online(2).await.unwrap());
    assert!(!send(&env, 1, 2, "now offline").await.unwrap().delivered);
}

#[tokio::test]
async fn only_another_registered_user_is_a_peer() {
    let env = Env::new().await;
    env.two_users().await;
    let chat = &env.services.chat;
    assert!(matches!(chat.connect(1, 1, "s1".into()).await, Err(ServiceError::SelfChat)));
    assert!(matches!(chat.connect(1, 99, "s1".into()).await, Err(ServiceError::UserNotFound)));
    assert!(!chat.is_online(1).await.unwrap(), "a refused connection is not present");
}

#[tokio::test]
async fn content_rules_refuse_and_store_nothing() {
    let env = Env::with(|s| s.chat.max_content_bytes = 10).await;
    assert!(matches!(send(&env, 1, 2, "").await, Err(ServiceError::EmptyContent)));
    assert!(matches!(send(&env, 1, 2, "  \n\t").await, Err(ServiceError::EmptyContent)));
    assert!(matches!(send(&env, 1, 2, "12345678901").await, Err(ServiceError::ContentTooLarge { len: 11, max: 10 })));
    // ten bytes is fine, and bytes count, not characters: "é" is two
    send(&env, 1, 2, "1234567890").await.unwrap();
    assert!(matches!(send(&env, 1, 2, "ééééé1").await, Err(ServiceError::ContentTooLarge { .. })));
    assert_eq!(env.services.chat.count(1, 2).await.unwrap(), 1);
}

#[tokio::test]
async fn no_reply_limit_refuses_the_fourth_until_the_peer_answers() {
    let env = Env::new().await;
    for _ in 0..3 {
        send(&env, 1, 2, "hello?").await.unwrap();
    }
    match send(&env, 1, 2, "hello??").await {
        Err(ServiceError::NoReplyLimit { limit: 3 }) => {}
        other => panic!("expected the limit, got {other:?}"),
    }
    assert_eq!(env.services.chat.count(1, 2).await.unwrap(), 3, "a refused send is not stored");
    send(&env, 2, 1, "hi!").await.unwrap();
    send(&env, 1, 2, "at last").await.unwrap();
    assert_eq!(env.services.chat.count(1, 2).await.unwrap(), 5);
}

#[tokio::test]
async fn a_resent_client_msg_id_returns_the_first_reply_and_stores_nothing() {
    let env = Env::new().await;
    let chat = &env.services.chat;
    let first = chat.send(1, 2, "once".into(), Some("abc".into()), None).await.unwrap();
    let again = chat.send(1, 2, "once".into(), Some("abc".into()), None).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(chat.count(1, 2).await.unwrap(), 1);
    // and it does not count against the no-reply limit
    chat.send(1, 2, "two".into(), None, None).await.unwrap();
    chat.send(1, 2, "three".into(), None, None).await.unwrap();
    assert!(matches!(chat.send(1, 2, "four".into(), None, None).await, Err(ServiceError::NoReplyLimit { .. })));
}

#[tokio::test]
async fn concurrent_resends_store_one_message() {
    let env = Env::with(|s| s.chat.no_reply_limit = 1000).await;
    let other = env.second_process();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let chat = if i % 2 == 0 { env.services.chat.clone() } else { other.chat.clone() };
        tasks.push(tokio::spawn(async move { chat.send(1, 2, "same".into(), Some("dup".into()), None).await }));
    }
    let mut seqs = HashSet::new();
    for t in tasks {
        seqs.insert(t.await.unwrap().unwrap().message.seq);
    }
    assert_eq!(seqs.len(), 1, "every resend got the first message");
    assert_eq!(env.services.chat.count(1, 2).await.unwrap(), 1);
    // and no seq was burned: the next message is 2
    assert_eq!(env.services.chat.send(2, 1, "next".into(), None, None).await.unwrap().message.seq, 2);
}

/// Both sides send at once, through two processes (two hubs and seq caches) on the same
/// stores: every seq from 1 to N exactly once.
#[tokio::test]
async fn seq_is_gap_free_and_unique_under_concurrent_sends_from_both_sides() {
    let env = Env::with(|s| s.chat.no_reply_limit = 10_000).await;
    let other = env.second_process();
    let per_side = 60;
    let mut tasks = Vec::new();
    for i in 0..per_side * 2 {
        let (chat, from, to) = match i % 4 {
            0 => (env.services.chat.clone(), 1, 2),
            1 => (env.services.chat.clone(), 2, 1),
            2 => (other.chat.clone(), 1, 2),
            _ => (other.chat.clone(), 2, 1),
        };
        tasks.push(tokio::spawn(async move { chat.send(from, to, format!("m{i}"), None, None).await }));
    }
    let mut acked: Vec<i64> = Vec::new();
    for t in tasks {
        acked.push(t.await.unwrap().unwrap().message.seq);
    }
    acked.sort_unstable();
    let expected: Vec<i64> = (1..=(per_side * 2) as i64).collect();
    assert_eq!(acked, expected);
    let stored: Vec<i64> = {
        let mut all = env.services.chat.history(1, 2, None, Some(50)).await.unwrap();
        while let Some(oldest) = all.last().map(|m| m.seq)
            && oldest > 1
        {
            all.extend(env.services.chat.history(1, 2, Some(oldest), Some(50)).await.unwrap());
        }
        let mut s: Vec<i64> = all.iter().map(|m| m.seq).collect();
        s.sort_unstable();
        s
    };
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn history_pages_newest_first_and_clamps_the_limit() {
    let env = Env::with(|s| s.chat.no_reply_limit = 1000).await;
    for i in 1..=60 {
        let (f, t) = if i % 3 == 0 { (2, 1) } else { (1, 2) };
        send(&env, f, t, &format!("m{i}")).await.unwrap();
    }
    let chat = &env.services.chat;
    let page = chat.history(2, 1, None, None).await.unwrap();
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), (51..=60).rev().collect::<Vec<_>>());
    let page = chat.history(1, 2, Some(51), Some(500)).await.unwrap();
    assert_eq!(page.len(), 50, "at most 50");
    assert_eq!(page.first().unwrap().seq, 50);
    assert_eq!(page.last().unwrap().seq, 1);
    assert!(chat.history(1, 2, Some(1), None).await.unwrap().is_empty());
    assert!(chat.history(1, 3, None, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn unread_lists_both_directions_but_marks_only_mine_and_refreshes_expiry() {
    let env = Env::new().await;
    let a = send(&env, 1, 2, "to two").await.unwrap().message;
    let b = send(&env, 2, 1, "to one").await.unwrap().message;
    let before = env.daos.message.get(a.id.parse().unwrap()).await.unwrap().unwrap().expire_at;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let unread = env.services.chat.unread(2, 1).await.unwrap();
    assert_eq!(unread.iter().map(|m| (m.seq, m.read)).collect::<Vec<_>>(), vec![(1, true), (2, false)]);
    let a_now = env.daos.message.get(a.id.parse().unwrap()).await.unwrap().unwrap();
    assert!(a_now.read);
    assert!(a_now.expire_at > before, "expiry refreshed on read");
    assert!(!env.daos.message.get(b.id.parse().unwrap()).await.unwrap().unwrap().read);
    // user 1 still has the message from 2 unread
    assert_eq!(env.services.chat.unread(1, 2).await.unwrap().len(), 1);
    assert!(env.services.chat.unread(1, 2).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_store_that_is_down_refuses_the_send_and_keeps_the_limit_count() {
    let env = Env::new().await;
    let services = env.with_mongo_down(|s| s.mongo.timeout_ms = 300).await;
    let err = services.chat.send(1, 2, "lost?".into(), None, None).await.unwrap_err();
    assert_eq!(err.unavailable_store(), Some(Store::Mongo), "{err:?}");
    // the refused send did not count towards the no-reply limit
    for _ in 0..3 {
        env.services.chat.send(1, 2, "ok".into(), None, None).await.unwrap();
    }
    assert_eq!(env.services.chat.count(1, 2).await.unwrap(), 3);
}

#[tokio::test]
async fn a_client_msg_id_reused_for_another_peer_is_refused() {
    let env = Env::new().await;
    let chat = &env.services.chat;
    chat.send(1, 2, "to two".into(), Some("c-1".into()), None).await.unwrap();
    let err = chat.send(1, 3, "to three".into(), Some("c-1".into()), None).await.unwrap_err();
    assert!(matches!(err, ServiceError::ClientMsgIdReused(_)), "{err:?}");
    assert_eq!(chat.count(1, 3).await.unwrap(), 0);
}

/// The seq the conversation 1:2 has on record.
async fn recorded_seq(env: &Env) -> Option<i64> {
    env.daos.conversation.last_seqs(&["1:2".into()]).await.unwrap().get("1:2").copied()
}

#[tokio::test]
async fn seq_keeps_rising_after_the_messages_expired() {
    let env = Env::new().await;
    for i in 0..3 {
        env.services.chat.send(1, 2, format!("m{i}"), None, None).await.unwrap();
    }
    // the summary is written off the send path; expiry comes 90 days later
    let recorded = poll_until(Duration::from_secs(2), || recorded_seq(&env), |s| *s == Some(3)).await;
    assert_eq!(recorded, Some(3));
    // the TTL index removed every message of the conversation
    let db = env.ts.mongo().await;
    db.collection::<bson::Document>("messages").delete_many(bson::doc! {}).await.unwrap();
    // a process with a cold cache still continues from 3
    let later = env.second_process();
    assert_eq!(later.chat.send(2, 1, "back".into(), None, None).await.unwrap().message.seq, 4);
}

#[tokio::test]
async fn frames_never_written_put_their_message_back_to_unread() {
    let env = Env::new().await;
    env.two_users().await;
    let chat = &env.services.chat;
    let mut peer = chat.connect(2, 1, "s2".into()).await.unwrap();
    let out = chat.send(1, 2, "pushed".into(), None, None).await.unwrap();
    assert!(out.delivered && out.message.read);
    // the peer's connection ends before it wrote the queued frame
    chat.disconnect(&mut peer, None).await;
    let unread = chat.unread(2, 1).await.unwrap();
    assert_eq!(unread.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), vec!["pushed"]);
}

/// Many conversations, resends inside the same batch, two processes: per conversation the
/// seqs are 1..n, and each client_msg_id is stored once.
#[tokio::test]
async fn batched_sends_keep_every_guarantee() {
    let env = Env::with(|s| s.chat.no_reply_limit = 100_000).await;
    let other = env.second_process();
    let mut tasks = Vec::new();
    for i in 0..400u64 {
        let chat = if i % 3 == 0 { other.chat.clone() } else { env.services.chat.clone() };
        // every message is sent twice, by the same sender with the same client_msg_id
        let j = i / 2;
        let (from, to) = (1 + j % 10, 100 + j % 10);
        let cmid = format!("m{j}");
        tasks.push(tokio::spawn(async move { chat.send(from, to, format!("c{i}"), Some(cmid), None).await }));
    }
    let mut by_cmid = std::collections::HashMap::new();
    for t in tasks {
        let out = t.await.unwrap().unwrap();
        let m = out.message;
        let previous = by_cmid.insert((m.from, m.client_msg_id.clone()), (m.id.clone(), m.seq));
        if let Some(p) = previous {
            assert_eq!(p, (m.id, m.seq), "a resend got the first message");
        }
    }
    assert_eq!(by_cmid.len(), 200);
    for k in 0..10 {
        let n = env.services.chat.count(1 + k, 100 + k).await.unwrap();
        assert_eq!(n, 20);
        let page = env.services.chat.history(1 + k, 100 + k, None, Some(50)).await.unwrap();
        let mut seqs: Vec<i64> = page.iter().map(|m| m.seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    }
}

/// Another writer took a seq this process had not seen: the send takes the next one, and
/// the conversation has no gap and no duplicate.
#[tokio::test]
async fn a_seq_taken_elsewhere_is_skipped_without_a_gap() {
    let env = Env::new().await;
    let chat = &env.services.chat;
    assert_eq!(chat.send(1, 2, "one".into(), None, None).await.unwrap().message.seq, 1);
    // another process stores seq 2 behind this one's back
    let db = env.ts.mongo().await;
    let mut doc = env.daos.message.history("1:2", None, 1).await.unwrap().remove(0);
    doc.id = bson::oid::ObjectId::new();
    doc.seq = 2;
    db.collection::<chat_model::MessageDoc>("messages").insert_one(&doc).await.unwrap();
    assert_eq!(chat.send(2, 1, "three".into(), None, None).await.unwrap().message.seq, 3);
    assert_eq!(chat.send(1, 2, "four".into(), None, None).await.unwrap().message.seq, 4);
    assert_eq!(chat.count(1, 2).await.unwrap(), 4);
}

/// A reconnecting client resends its last (stored) message and sends a new one at once: the
/// resend is not counted again, so the new one is within the limit.
#[tokio::test]
async fn a_resend_does_not_count_against_the_limit() {
    let env = Env::new().await;
    let chat = env.services.chat.clone();
    chat.send(1, 2, "one".into(), Some("a1".into()), None).await.unwrap();
    chat.send(1, 2, "two".into(), Some("a2".into()), None).await.unwrap();
    let (resend, third) = tokio::join!(
        chat.send(1, 2, "two".into(), Some("a2".into()), None),
        chat.send(1, 2, "three".into(), Some("a3".into()), None)
    );
    assert_eq!(resend.unwrap().message.seq, 2);
    assert_eq!(third.unwrap().message.seq, 3, "the third of three is allowed");
    assert!(matches!(chat.send(1, 2, "four".into(), None, None).await, Err(ServiceError::NoReplyLimit { .. })));
}

/// Resends inside one batch of a send the limit refuses are refused the same way.
#[tokio::test]
async fn resends_of_a_refused_send_are_refused_alike() {
    let env = Env::new().await;
    let chat = env.services.chat.clone();
    for i in 0..3 {
        chat.send(1, 2, format!("m{i}"), None, None).await.unwrap();
    }
    let (a, b) = tokio::join!(
        chat.send(1, 2, "again".into(), Some("x".into()), None),
        chat.send(1, 2, "again".into(), Some("x".into()), None)
    );
    assert!(matches!(a, Err(ServiceError::NoReplyLimit { .. })), "{a:?}");
    assert!(matches!(b, Err(ServiceError::NoReplyLimit { .. })), "{b:?}");
}

/// The store is down and the send queue full: further sends are refused at once as busy
/// (nothing stored), not held; every send gets an answer.
#[tokio::test]
async fn a_full_send_queue_refuses_clearly() {
    let env = Env::new().await;
    let services = env
        .with_mongo_down(|s| {
            s.mongo.timeout_ms = 500;
            s.chat.commit_batch = 1;
            s.chat.commit_shards = 1;
        })
        .await;
    let started = std::time::Instant::now();
    let sends = (0..30).map(|i| services.chat.send(1, 2, format!("m{i}"), None, None));
    let results = futures_util::future::join_all(sends).await;
    let busy = results.iter().filter(|r| matches!(r, Err(ServiceError::Busy))).count();
    let down =
        results.iter().filter(|r| r.as_ref().err().and_then(|e| e.unavailable_store()) == Some(Store::Mongo)).count();
    assert!(busy > 0, "some sends are refused as busy");
    assert_eq!(busy + down, 30, "every send is answered: busy or store unavailable");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[tokio::test]
async fn an_unread_list_that_never_arrived_is_unread_again() {
    let env = Env::new().await;
    let chat = &env.services.chat;
    chat.send(1, 2, "for two".into(), None, None).await.unwrap();
    chat.send(2, 1, "for one".into(), None, None).await.unwrap();
    let list = chat.unread(2, 1).await.unwrap();
    assert!(chat.unread(2, 1).await.unwrap().iter().all(|m| m.to != 2), "marked read");
    // the frame carrying the list could not be written
    chat.restore_unread(2, &list).await;
    let again = chat.unread(2, 1).await.unwrap();
    assert!(again.iter().any(|m| m.to == 2 && m.content == "for two"));
}
