//! The send path under concurrency and faults: seqs, resends, the no-reply limit, a store that
//! is down, hangs or loses a reply, and a shutdown.

use chat_model::Target;
use std::{collections::HashSet, time::Duration};

use chat_dao::Store;
use chat_service::ServiceError;
use chat_testkit::poll_until;

use crate::{Env, chat::send};

#[tokio::test]
async fn concurrent_resends_store_one_message() {
    let env = Env::with(|s| s.chat.no_reply_limit = 1000).await;
    let other = env.second_process();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let chat = if i % 2 == 0 { env.services.chat.clone() } else { other.chat.clone() };
        tasks.push(tokio::spawn(async move {
            chat.send(1, Target::User(2), "same".into(), Some("dup".into()), None).await
        }));
    }
    let mut seqs = HashSet::new();
    for t in tasks {
        seqs.insert(t.await.unwrap().unwrap().message.seq);
    }
    assert_eq!(seqs.len(), 1, "every resend got the first message");
    assert_eq!(env.services.chat.count(1, 2).await.unwrap(), 1);
    // and no seq was burned: the next message is 2
    assert_eq!(env.services.chat.send(2, Target::User(1), "next".into(), None, None).await.unwrap().message.seq, 2);
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
        tasks.push(tokio::spawn(async move { chat.send(from, Target::User(to), format!("m{i}"), None, None).await }));
    }
    let mut acked: Vec<i64> = Vec::new();
    for t in tasks {
        acked.push(t.await.unwrap().unwrap().message.seq);
    }
    acked.sort_unstable();
    let expected: Vec<i64> = (1..=(per_side * 2) as i64).collect();
    assert_eq!(acked, expected);
    let stored: Vec<i64> = {
        let mut all = env.services.chat.history(1, Target::User(2), None, Some(50)).await.unwrap();
        while let Some(oldest) = all.last().map(|m| m.seq)
            && oldest > 1
        {
            all.extend(env.services.chat.history(1, Target::User(2), Some(oldest), Some(50)).await.unwrap());
        }
        let mut s: Vec<i64> = all.iter().map(|m| m.seq).collect();
        s.sort_unstable();
        s
    };
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn a_store_that_is_down_refuses_the_send_and_keeps_the_limit_count() {
    let env = Env::new().await;
    let services = env.with_mongo_down(|s| s.mongo.timeout_ms = 300).await;
    let err = services.chat.send(1, Target::User(2), "lost?".into(), None, None).await.unwrap_err();
    assert_eq!(err.unavailable_store(), Some(Store::Mongo), "{err:?}");
    // the refused send did not count towards the no-reply limit
    for _ in 0..3 {
        env.services.chat.send(1, Target::User(2), "ok".into(), None, None).await.unwrap();
    }
    assert_eq!(env.services.chat.count(1, 2).await.unwrap(), 3);
}

#[tokio::test]
async fn seq_keeps_rising_after_the_messages_expired() {
    let env = Env::new().await;
    for i in 0..3 {
        env.services.chat.send(1, Target::User(2), format!("m{i}"), None, None).await.unwrap();
    }
    // the summary is part of the commit: recorded before the answer
    assert_eq!(env.daos.conversation.state("1:2").await.unwrap().last_seq, 3);
    // the TTL index removed every message of the conversation
    let db = env.ts.mongo().await;
    db.collection::<bson::Document>("messages").delete_many(bson::doc! {}).await.unwrap();
    // a process with a cold cache still continues from 3
    let later = env.second_process();
    assert_eq!(later.chat.send(2, Target::User(1), "back".into(), None, None).await.unwrap().message.seq, 4);
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
        tasks.push(tokio::spawn(
            async move { chat.send(from, Target::User(to), format!("c{j}"), Some(cmid), None).await },
        ));
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
        let page = env.services.chat.history(1 + k, Target::User(100 + k), None, Some(50)).await.unwrap();
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
    assert_eq!(chat.send(1, Target::User(2), "one".into(), None, None).await.unwrap().message.seq, 1);
    // another process stores seq 2 behind this one's back
    let db = env.ts.mongo().await;
    let mut doc = env.daos.message.history("1:2", None, 0, 1).await.unwrap().remove(0);
    doc.id = bson::oid::ObjectId::new();
    doc.seq = 2;
    db.collection::<chat_model::MessageDoc>("messages").insert_one(&doc).await.unwrap();
    assert_eq!(chat.send(2, Target::User(1), "three".into(), None, None).await.unwrap().message.seq, 3);
    assert_eq!(chat.send(1, Target::User(2), "four".into(), None, None).await.unwrap().message.seq, 4);
    assert_eq!(chat.count(1, 2).await.unwrap(), 4);
}

/// A reconnecting client resends its last (stored) message and sends a new one at once: the
/// resend is not counted again, so the new one is within the limit.
#[tokio::test]
async fn a_resend_does_not_count_against_the_limit() {
    let env = Env::new().await;
    let chat = env.services.chat.clone();
    chat.send(1, Target::User(2), "one".into(), Some("a1".into()), None).await.unwrap();
    chat.send(1, Target::User(2), "two".into(), Some("a2".into()), None).await.unwrap();
    let (resend, third) = tokio::join!(
        chat.send(1, Target::User(2), "two".into(), Some("a2".into()), None),
        chat.send(1, Target::User(2), "three".into(), Some("a3".into()), None)
    );
    assert_eq!(resend.unwrap().message.seq, 2);
    assert_eq!(third.unwrap().message.seq, 3, "the third of three is allowed");
    assert!(matches!(
        chat.send(1, Target::User(2), "four".into(), None, None).await,
        Err(ServiceError::NoReplyLimit { .. })
    ));
}

/// Resends inside one batch of a send the limit refuses are refused the same way.
#[tokio::test]
async fn resends_of_a_refused_send_are_refused_alike() {
    let env = Env::new().await;
    let chat = env.services.chat.clone();
    for i in 0..3 {
        chat.send(1, Target::User(2), format!("m{i}"), None, None).await.unwrap();
    }
    let (a, b) = tokio::join!(
        chat.send(1, Target::User(2), "again".into(), Some("x".into()), None),
        chat.send(1, Target::User(2), "again".into(), Some("x".into()), None)
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
    let sends = (0..30).map(|i| services.chat.send(1, Target::User(2), format!("m{i}"), None, None));
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
        later.chat.send(1, Target::User(2), format!("m{i}"), None, None).await.unwrap();
    }
    // a conversation nobody answered is still limited
    for _ in 0..3 {
        send(&env, 1, 3, "anyone?").await.unwrap();
    }
    assert!(matches!(send(&env, 1, 3, "?").await, Err(ServiceError::NoReplyLimit { .. })));
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
    chat.send(1, Target::User(2), "before".into(), Some("a-1".into()), None).await.unwrap();
    proxy.set(Mode::SwallowReplies);
    let pending =
        tokio::spawn(
            async move { chat.send(1, Target::User(2), "in the dark".into(), Some("a-2".into()), None).await },
        );
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
    assert_eq!(services.chat.send(1, Target::User(2), "after".into(), None, None).await.unwrap().message.seq, 3);
    assert!(services.metrics.unknown_outcomes.get() >= 1);
}

/// Shutdown: sends already queued are stored and answered; new ones are refused.
#[tokio::test]
async fn shutdown_drains_the_queue_and_refuses_new_sends() {
    let env = Env::with(|s| s.chat.no_reply_limit = 1000).await;
    let chat = env.services.chat.clone();
    let queued: Vec<_> =
        (0..50).map(|i| chat.submit(1, Target::User(2), format!("m{i}"), None, None).unwrap()).collect();
    chat.begin_shutdown();
    assert!(matches!(chat.send(1, Target::User(2), "late".into(), None, None).await, Err(ServiceError::ShuttingDown)));
    env.services.stop_workers().await;
    let mut seqs = Vec::new();
    for p in queued {
        seqs.push(p.finish().await.unwrap().message.seq);
    }
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    assert_eq!(chat.count(1, 2).await.unwrap(), 50);
    assert!(env.services.workers.down().is_empty());
}

/// The no-reply limit counts the sender's stored messages: when they expire, the sender may
/// write again; and a peer's answer whose summary was never written (a crash between the
/// insert and the summary) is found among the messages.
#[tokio::test]
async fn the_no_reply_limit_is_counted_from_the_store() {
    let env = Env::new().await;
    for i in 0..3 {
        send(&env, 1, 2, &format!("m{i}")).await.unwrap();
    }
    assert!(matches!(send(&env, 1, 2, "?").await, Err(ServiceError::NoReplyLimit { limit: 3 })));
    let db = env.ts.mongo().await;
    let messages = db.collection::<bson::Document>("messages");
    // two of them expired
    messages.delete_many(bson::doc! { "conv": "1:2", "seq": { "$lte": 2 } }).await.unwrap();
    let later = env.second_process();
    later.chat.send(1, Target::User(2), "again".into(), None, None).await.unwrap();
    later.chat.send(1, Target::User(2), "and again".into(), None, None).await.unwrap();
    assert!(matches!(
        later.chat.send(1, Target::User(2), "?".into(), None, None).await,
        Err(ServiceError::NoReplyLimit { .. })
    ));
    // the peer's answer is stored, its summary lost
    let mut answer = env.daos.message.history("1:2", None, 0, 1).await.unwrap().remove(0);
    answer.id = bson::oid::ObjectId::new();
    answer.seq += 1;
    (answer.from, answer.to) = (2, Some(1));
    db.collection::<chat_model::MessageDoc>("messages").insert_one(&answer).await.unwrap();
    let fresh = env.second_process();
    for i in 0..5 {
        fresh.chat.send(1, Target::User(2), format!("free {i}"), None, None).await.unwrap();
    }
}
