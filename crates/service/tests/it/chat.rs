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
    // it is stored, and its conversation recorded, before the reply
    assert_eq!(env.services.chat.count(1, 2).await.unwrap(), 1);
    assert_eq!(env.daos.conversation.state("1:2").await.unwrap().last_seq, 1);
    let unread = env.services.chat.unread(2, 1).await.unwrap();
    assert_eq!(unread.messages.len(), 1);
    assert_eq!(unread.messages[0].content, "hello");
    assert!(!unread.more);
    // read once it was written to the reader (the session says so)
    env.services.chat.mark_read(2, &unread.messages).await.unwrap();
    assert!(env.services.chat.unread(2, 1).await.unwrap().messages.is_empty());
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
    assert!(!out.message.read, "stored unread until a connection of the peer wrote it");
    for conn in [&mut tab1, &mut tab2, &mut sender_other_tab] {
        let frame: ServerFrame = serde_json::from_str(&conn.outbound.recv().await.unwrap().text).unwrap();
        assert_eq!(frame.code, ReplyCode::Incoming);
        assert_eq!(frame.message.as_ref().unwrap(), &out.message);
    }
    chat.disconnect(&mut tab1).await;
    chat.disconnect(&mut tab2).await;
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
async fn unread_is_what_was_sent_to_me_oldest_first_in_bounded_pages_marked_read_when_written() {
    let env = Env::with(|s| {
        s.chat.unread_max = 3;
        s.chat.no_reply_limit = 100;
    })
    .await;
    let chat = &env.services.chat;
    let mine = send(&env, 2, 1, "from two").await.unwrap().message;
    for i in 1..=5 {
        send(&env, 1, 2, &format!("to two {i}")).await.unwrap();
    }
    let before = env.daos.message.get(chat_id(&mine)).await.unwrap().unwrap().expire_at;
    let page = chat.unread(2, 1).await.unwrap();
    assert_eq!(page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2, 3, 4]);
    assert!(page.more);
    // nothing is marked until the page was written
    assert_eq!(chat.unread(2, 1).await.unwrap(), page);
    tokio::time::sleep(Duration::from_millis(20)).await;
    chat.mark_read(2, &page.messages).await.unwrap();
    let first = env.daos.message.get(chat_id(&page.messages[0])).await.unwrap().unwrap();
    assert!(first.read);
    assert!(first.expire_at > before, "expiry refreshed on read");
    let rest = chat.unread(2, 1).await.unwrap();
    assert_eq!((rest.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), rest.more), (vec![5, 6], false));
    // the other side's unread is its own
    assert_eq!(chat.unread(1, 2).await.unwrap().messages.len(), 1);
    // marking is only ever for the reader's own messages
    chat.mark_read(2, std::slice::from_ref(&mine)).await.unwrap();
    assert!(!env.daos.message.get(chat_id(&mine)).await.unwrap().unwrap().read);
}

fn chat_id(m: &chat_model::ChatMessage) -> bson::oid::ObjectId {
    m.id.parse().unwrap()
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

#[tokio::test]
async fn seq_keeps_rising_after_the_messages_expired() {
    let env = Env::new().await;
    for i in 0..3 {
        env.services.chat.send(1, 2, format!("m{i}"), None, None).await.unwrap();
    }
    // the summary is part of the commit: recorded before the answer
    assert_eq!(env.daos.conversation.state("1:2").await.unwrap().last_seq, 3);
    // the TTL index removed every message of the conversation
    let db = env.ts.mongo().await;
    db.collection::<bson::Document>("messages").delete_many(bson::doc! {}).await.unwrap();
    // a process with a cold cache still continues from 3
    let later = env.second_process();
    assert_eq!(later.chat.send(2, 1, "back".into(), None, None).await.unwrap().message.seq, 4);
}

#[tokio::test]
async fn a_pushed_message_is_read_once_written_and_unread_if_never_written() {
    let env = Env::new().await;
    env.two_users().await;
    let chat = &env.services.chat;
    let mut peer = chat.connect(2, 1, "s2".into()).await.unwrap();
    let written = chat.send(1, 2, "written".into(), None, None).await.unwrap();
    let lost = chat.send(1, 2, "never written".into(), None, None).await.unwrap();
    assert!(written.delivered && lost.delivered);
    // the session wrote the first frame, then its connection ended before the second
    let frame = peer.outbound.recv().await.unwrap();
    chat.written(&frame);
    chat.disconnect(&mut peer).await;
    let id = chat_id(&written.message);
    let read =
        poll_until(Duration::from_secs(5), || async { env.daos.message.get(id).await.unwrap().unwrap().read }, |r| *r)
            .await;
    assert!(read, "marked read once written");
    let unread = chat.unread(2, 1).await.unwrap();
    assert_eq!(unread.messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), vec!["never written"]);
    // a resend of the written one says delivered; of the other, stored
    let again = chat.send(1, 2, "written".into(), written.message.client_msg_id.clone(), None).await;
    assert!(again.is_ok());
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
        tasks.push(tokio::spawn(async move { chat.send(from, to, format!("c{j}"), Some(cmid), None).await }));
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
async fn an_answered_conversation_stays_answered_when_redis_forgets() {
    let env = Env::new().await;
    send(&env, 1, 2, "hello").await.unwrap();
    send(&env, 2, 1, "hi!").await.unwrap();
    crate::register::flush_redis(&env).await;
    // a process with a cold cache, and Redis empty: the summary says 2 has answered
    let later = env.second_process();
    for i in 0..6 {
        later.chat.send(1, 2, format!("m{i}"), None, None).await.unwrap();
    }
    // a conversation nobody answered is still limited
    for _ in 0..3 {
        send(&env, 1, 3, "anyone?").await.unwrap();
    }
    assert!(matches!(send(&env, 1, 3, "?").await, Err(ServiceError::NoReplyLimit { .. })));
}

#[tokio::test]
async fn a_resend_with_other_content_is_a_conflict_and_stores_nothing() {
    let env = Env::new().await;
    let chat = &env.services.chat;
    chat.send(1, 2, "first".into(), Some("c-1".into()), None).await.unwrap();
    let err = chat.send(1, 2, "second".into(), Some("c-1".into()), None).await.unwrap_err();
    assert!(matches!(err, ServiceError::ClientMsgIdConflict(_)), "{err:?}");
    assert_eq!(chat.count(1, 2).await.unwrap(), 1);
}

#[tokio::test]
async fn sends_over_the_users_rate_are_refused_and_not_stored() {
    let env = Env::with(|s| {
        s.limits.sends_per_sec = 1;
        s.limits.send_burst = 3;
        s.chat.no_reply_limit = 100;
    })
    .await;
    for i in 0..3 {
        send(&env, 1, 2, &format!("m{i}")).await.unwrap();
    }
    match send(&env, 1, 2, "one too many").await {
        Err(ServiceError::RateLimited { retry_after_ms }) => assert!((1..=1000).contains(&retry_after_ms)),
        other => panic!("expected the rate limit, got {other:?}"),
    }
    assert_eq!(env.services.chat.count(1, 2).await.unwrap(), 3);
    send(&env, 2, 1, "another user has their own rate").await.unwrap();
}

#[tokio::test]
async fn a_user_holds_a_bounded_number_of_connections() {
    let env = Env::with(|s| s.limits.connections_per_user = 2).await;
    env.two_users().await;
    let chat = &env.services.chat;
    let mut a = chat.connect(1, 2, "s".into()).await.unwrap();
    let _b = chat.connect(1, 2, "s".into()).await.unwrap();
    assert!(matches!(chat.connect(1, 2, "s".into()).await, Err(ServiceError::TooManyConnections { max: 2 })));
    assert_eq!(chat.hub().len(), 2, "the refused one is not registered");
    chat.disconnect(&mut a).await;
    chat.connect(1, 2, "s".into()).await.unwrap();
}

/// The insert reaches MongoDB but its reply is lost: the send is not answered until the
/// outcome is known, and then it is answered as stored, once, with the next seq.
#[tokio::test]
async fn an_insert_whose_reply_was_lost_is_settled_before_the_answer() {
    use chat_testkit::proxy::{FaultProxy, Mode};
    let env = Env::new().await;
    let proxy = FaultProxy::start(env.mongo_addr()).await.unwrap();
    let services = env.behind(&proxy, |s| s.mongo.timeout_ms = 400).await;
    let chat = services.chat.clone();
    chat.send(1, 2, "before".into(), Some("a-1".into()), None).await.unwrap();
    proxy.set(Mode::SwallowReplies);
    let pending = tokio::spawn(async move { chat.send(1, 2, "in the dark".into(), Some("a-2".into()), None).await });
    // the insert arrives and is carried out; nobody hears back
    let stored =
        poll_until(Duration::from_secs(5), || env.services.chat.count(1, 2), |n| *n.as_ref().unwrap() == 2).await;
    assert_eq!(stored.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!pending.is_finished(), "no answer while the outcome is unknown");
    proxy.set(Mode::Pass);
    let out = tokio::time::timeout(Duration::from_secs(20), pending).await.unwrap().unwrap().unwrap();
    assert_eq!(out.message.seq, 2);
    assert_eq!(out.message.content, "in the dark");
    assert_eq!(env.services.chat.count(1, 2).await.unwrap(), 2, "stored once");
    assert_eq!(services.chat.send(1, 2, "after".into(), None, None).await.unwrap().message.seq, 3);
    assert!(services.metrics.unknown_outcomes.get() >= 1);
}

/// Shutdown: sends already queued are stored and answered; new ones are refused.
#[tokio::test]
async fn shutdown_drains_the_queue_and_refuses_new_sends() {
    let env = Env::with(|s| s.chat.no_reply_limit = 1000).await;
    let chat = env.services.chat.clone();
    let queued: Vec<_> = (0..50).map(|i| chat.submit(1, 2, format!("m{i}"), None, None).unwrap()).collect();
    chat.begin_shutdown();
    assert!(matches!(chat.send(1, 2, "late".into(), None, None).await, Err(ServiceError::ShuttingDown)));
    env.services.stop_workers().await;
    let mut seqs = Vec::new();
    for p in queued {
        seqs.push(p.finish().await.unwrap().message.seq);
    }
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    assert_eq!(chat.count(1, 2).await.unwrap(), 50);
    assert!(env.services.workers.down().is_empty());
}

/// The node's heartbeat closes the connections whose session ended or whose account was
/// disabled, wherever that happened.
#[tokio::test]
async fn the_heartbeat_closes_ended_sessions_and_disabled_accounts() {
    use chat_model::{LoginRequest, RegisterRequest};
    let env = Env::with(|s| s.websocket.ping_interval_secs = 1).await;
    let r = &env.services.register;
    let mut users = Vec::new();
    for name in ["user_one", "user_two", "user_three"] {
        let req = RegisterRequest { nick_name: "Nick".into(), user_name: name.into(), password: "password-1".into() };
        let id = r.register(req, None).await.unwrap();
        let s = r.login(LoginRequest { user_name: name.into(), password: "password-1".into() }, None).await.unwrap();
        users.push((id, r.authenticate(&s.token).await.unwrap()));
    }
    let chat = &env.services.chat;
    let (one, two, three) = (&users[0], &users[1], &users[2]);
    let mut c1 = chat.connect(one.0, two.0, one.1.session.clone()).await.unwrap();
    let mut c2 = chat.connect(two.0, one.0, two.1.session.clone()).await.unwrap();
    let c3 = chat.connect(three.0, one.0, three.1.session.clone()).await.unwrap();
    // one logs out on another process (this one's hub does not know); two is disabled
    env.second_process().register.logout(&one.1).await.unwrap();
    env.sql(&format!("UPDATE users SET status = 0 WHERE id = {}", two.0)).await;
    for conn in [&mut c1, &mut c2] {
        tokio::time::timeout(Duration::from_secs(5), conn.kick.changed()).await.unwrap().unwrap();
        assert_eq!(*conn.kick.borrow(), Some(chat_service::Kick::SessionEnded));
    }
    assert_eq!(*c3.kick.borrow(), None);
    assert!(chat.is_online(three.0).await.unwrap());
}
