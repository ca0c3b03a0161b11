//! Chat as its users see it: delivery, unread, history, the rules, the limits, the heartbeat.

use chat_model::Target;
use std::time::Duration;

use chat_model::{ReplyCode, ServerFrame};
use chat_service::ServiceError;
use chat_testkit::poll_until;

use crate::Env;

pub async fn send(env: &Env, from: u64, to: u64, text: &str) -> Result<chat_service::SendOutcome, ServiceError> {
    env.services.chat.send(from, Target::User(to), text.into(), None, None).await
}

#[tokio::test]
async fn offline_peer_gets_the_message_as_unread() {
    let env = Env::new().await;
    let out = send(&env, 1, 2, "hello").await.unwrap();
    assert!(!out.delivered);
    assert_eq!(out.frame().code, ReplyCode::StoredOffline);
    assert_eq!((out.message.seq, out.message.from, out.message.to), (1, 1, Some(2)));
    assert!(!out.message.read);
    // it is stored, and its conversation recorded, before the reply
    assert_eq!(env.services.chat.count(1, 2).await.unwrap(), 1);
    assert_eq!(env.daos.conversation.state("1:2").await.unwrap().last_seq, 1);
    let unread = env.services.chat.unread(2, Target::User(1), None).await.unwrap();
    assert_eq!(unread.messages.len(), 1);
    assert_eq!(unread.messages[0].content, "hello");
    assert!(!unread.more);
    // read once it was written to the reader (the session says so)
    env.services.chat.written_unread(2, Target::User(1), &unread.messages);
    let left = poll_until(
        Duration::from_secs(5),
        || env.services.chat.unread(2, Target::User(1), None),
        |u| u.as_ref().is_ok_and(|u| u.messages.is_empty()),
    )
    .await;
    assert!(left.unwrap().messages.is_empty());
}

#[tokio::test]
async fn online_peer_gets_it_pushed_on_every_connection() {
    let env = Env::new().await;
    env.two_users().await;
    let chat = &env.services.chat;
    let mut tab1 = chat.connect(2, Some(Target::User(1)), "s2".into()).await.unwrap();
    let mut tab2 = chat.connect(2, Some(Target::User(1)), "s2".into()).await.unwrap();
    let mut sender_other_tab = chat.connect(1, Some(Target::User(2)), "s1".into()).await.unwrap();
    let sender_tab = chat.connect(1, Some(Target::User(2)), "s1".into()).await.unwrap();
    assert!(chat.is_online(2).await.unwrap());
    let out = chat.send(1, Target::User(2), "hi".into(), Some("c-1".into()), Some(sender_tab.conn_id)).await.unwrap();
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
    assert!(matches!(chat.connect(1, Some(Target::User(1)), "s1".into()).await, Err(ServiceError::SelfChat)));
    assert!(matches!(chat.connect(1, Some(Target::User(99)), "s1".into()).await, Err(ServiceError::UserNotFound)));
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
    let first = chat.send(1, Target::User(2), "once".into(), Some("abc".into()), None).await.unwrap();
    let again = chat.send(1, Target::User(2), "once".into(), Some("abc".into()), None).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(chat.count(1, 2).await.unwrap(), 1);
    // and it does not count against the no-reply limit
    chat.send(1, Target::User(2), "two".into(), None, None).await.unwrap();
    chat.send(1, Target::User(2), "three".into(), None, None).await.unwrap();
    assert!(matches!(
        chat.send(1, Target::User(2), "four".into(), None, None).await,
        Err(ServiceError::NoReplyLimit { .. })
    ));
}

#[tokio::test]
async fn history_pages_newest_first_and_clamps_the_limit() {
    let env = Env::with(|s| s.chat.no_reply_limit = 1000).await;
    for i in 1..=60 {
        let (f, t) = if i % 3 == 0 { (2, 1) } else { (1, 2) };
        send(&env, f, t, &format!("m{i}")).await.unwrap();
    }
    let chat = &env.services.chat;
    let page = chat.history(2, Target::User(1), None, None).await.unwrap();
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), (51..=60).rev().collect::<Vec<_>>());
    let page = chat.history(1, Target::User(2), Some(51), Some(500)).await.unwrap();
    assert_eq!(page.len(), 50, "at most 50");
    assert_eq!(page.first().unwrap().seq, 50);
    assert_eq!(page.last().unwrap().seq, 1);
    assert!(chat.history(1, Target::User(2), Some(1), None).await.unwrap().is_empty());
    assert!(chat.history(1, Target::User(3), None, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn unread_is_both_sides_oldest_first_in_bounded_pages_marked_read_when_written() {
    let env = Env::with(|s| {
        s.chat.unread_max = 3;
        s.chat.no_reply_limit = 100;
    })
    .await;
    let chat = &env.services.chat;
    for i in 1..=5 {
        send(&env, 1, 2, &format!("to two {i}")).await.unwrap();
    }
    let before =
        env.daos.message.get(chat_id(&chat.unread(2, Target::User(1), None).await.unwrap().messages[1])).await.unwrap();
    let before = before.unwrap().expire_at;
    let seqs = |p: &chat_service::UnreadPage| p.messages.iter().map(|m| m.seq).collect::<Vec<_>>();
    let page = chat.unread(2, Target::User(1), None).await.unwrap();
    assert_eq!((seqs(&page), page.more), (vec![1, 2, 3], true));
    // one's own are unread too, from its side, until two reads them
    assert_eq!(seqs(&chat.unread(1, Target::User(2), None).await.unwrap()), vec![1, 2, 3]);
    // nothing is marked until the page was written
    assert_eq!(chat.unread(2, Target::User(1), None).await.unwrap(), page);
    chat.written_unread(2, Target::User(1), &page.messages);
    // the connection asks for the next page after the last seq it was given
    let rest = chat.unread(2, Target::User(1), Some(3)).await.unwrap();
    assert_eq!((seqs(&rest), rest.more), (vec![4, 5], false));
    let id = chat_id(&page.messages[1]);
    let first =
        poll_until(Duration::from_secs(5), || async { env.daos.message.get(id).await.unwrap().unwrap() }, |d| d.read)
            .await;
    assert!(first.read);
    assert!(first.expire_at > before, "expiry refreshed on read");
    assert_eq!(env.daos.conversation.read_positions("1:2").await.unwrap().get(&2), Some(&3), "two's position");
    assert_eq!(seqs(&chat.unread(2, Target::User(1), None).await.unwrap()), vec![4, 5]);
    // two answers: what two was shown counts as read, what two never saw (4, 5) stays unread
    let answer = send(&env, 2, 1, "from two").await.unwrap().message;
    assert_eq!(answer.seq, 6);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(seqs(&chat.unread(2, Target::User(1), None).await.unwrap()), vec![4, 5, 6], "two's 6 is unread by one");
    assert_eq!(env.daos.conversation.read_positions("1:2").await.unwrap().get(&2), Some(&3));
    let ones = chat.unread(1, Target::User(2), None).await.unwrap();
    assert_eq!(seqs(&ones), vec![4, 5, 6]);
    chat.written_unread(1, Target::User(2), &ones.messages);
    let mine_read = poll_until(
        Duration::from_secs(5),
        || async { env.daos.message.get(chat_id(&answer)).await.unwrap().unwrap() },
        |d| d.read,
    )
    .await;
    assert!(mine_read.read);
}

fn chat_id(m: &chat_model::ChatMessage) -> bson::oid::ObjectId {
    m.id.parse().unwrap()
}

#[tokio::test]
async fn a_client_msg_id_reused_for_another_peer_is_refused() {
    let env = Env::new().await;
    let chat = &env.services.chat;
    chat.send(1, Target::User(2), "to two".into(), Some("c-1".into()), None).await.unwrap();
    let err = chat.send(1, Target::User(3), "to three".into(), Some("c-1".into()), None).await.unwrap_err();
    assert!(matches!(err, ServiceError::ClientMsgIdReused(_)), "{err:?}");
    assert_eq!(chat.count(1, 3).await.unwrap(), 0);
}

#[tokio::test]
async fn a_pushed_message_is_read_once_written_and_unread_if_never_written() {
    let env = Env::new().await;
    env.two_users().await;
    let chat = &env.services.chat;
    let mut peer = chat.connect(2, Some(Target::User(1)), "s2".into()).await.unwrap();
    let written = chat.send(1, Target::User(2), "written".into(), None, None).await.unwrap();
    let lost = chat.send(1, Target::User(2), "never written".into(), None, None).await.unwrap();
    assert!(written.delivered && lost.delivered);
    // the session wrote the first frame, then its connection ended before the second
    let frame = peer.outbound.recv().await.unwrap();
    chat.written(&peer, &frame);
    chat.disconnect(&mut peer).await;
    let id = chat_id(&written.message);
    let read =
        poll_until(Duration::from_secs(5), || async { env.daos.message.get(id).await.unwrap().unwrap().read }, |r| *r)
            .await;
    assert!(read, "marked read once written");
    let unread = chat.unread(2, Target::User(1), None).await.unwrap();
    assert_eq!(unread.messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), vec!["never written"]);
    // a resend of the written one says delivered; of the other, stored
    let again = chat.send(1, Target::User(2), "written".into(), written.message.client_msg_id.clone(), None).await;
    assert!(again.is_ok());
}

#[tokio::test]
async fn a_resend_with_other_content_is_a_conflict_and_stores_nothing() {
    let env = Env::new().await;
    let chat = &env.services.chat;
    chat.send(1, Target::User(2), "first".into(), Some("c-1".into()), None).await.unwrap();
    let err = chat.send(1, Target::User(2), "second".into(), Some("c-1".into()), None).await.unwrap_err();
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
    let mut a = chat.connect(1, Some(Target::User(2)), "s".into()).await.unwrap();
    let _b = chat.connect(1, Some(Target::User(2)), "s".into()).await.unwrap();
    assert!(matches!(
        chat.connect(1, Some(Target::User(2)), "s".into()).await,
        Err(ServiceError::TooManyConnections { max: 2 })
    ));
    assert_eq!(chat.hub().len(), 2, "the refused one is not registered");
    chat.disconnect(&mut a).await;
    chat.connect(1, Some(Target::User(2)), "s".into()).await.unwrap();
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
    let mut c1 = chat.connect(one.0, Some(Target::User(two.0)), one.1.session.clone()).await.unwrap();
    let mut c2 = chat.connect(two.0, Some(Target::User(one.0)), two.1.session.clone()).await.unwrap();
    let c3 = chat.connect(three.0, Some(Target::User(one.0)), three.1.session.clone()).await.unwrap();
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

/// On a socket pinned to the conversation a pushed message counts as read, but the reader's
/// position moves over it only if every unread message before it was shown: messages waiting
/// past the first unread page stay unread.
#[tokio::test]
async fn a_push_never_marks_read_what_the_socket_did_not_show() {
    let env = Env::with(|s| {
        s.chat.unread_max = 2;
        s.chat.no_reply_limit = 100;
        s.chat.read_mark_delay_ms = 20;
    })
    .await;
    env.two_users().await;
    let chat = &env.services.chat;
    for i in 1..=5 {
        send(&env, 1, 2, &format!("waiting {i}")).await.unwrap();
    }
    let mut pinned = chat.connect(2, Some(Target::User(1)), "s2".into()).await.unwrap();
    let page = chat.unread(2, Target::User(1), None).await.unwrap();
    assert_eq!((page.messages.len(), page.more), (2, true));
    chat.written_unread(2, Target::User(1), &page.messages);
    let live = send(&env, 1, 2, "live").await.unwrap();
    assert!(live.delivered);
    let frame = loop {
        let f = pinned.outbound.recv().await.unwrap();
        if f.delivers.is_some() {
            break f;
        }
    };
    chat.written(&pinned, &frame);
    let position = || async { env.daos.conversation.read_positions("1:2").await.unwrap().get(&2).copied() };
    let moved = poll_until(Duration::from_secs(5), position, |p| *p == Some(2)).await;
    assert_eq!(moved, Some(2), "the page moved it; the push did not jump over 3..5");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(position().await, Some(2));
    let unread = chat.unread(2, Target::User(1), Some(2)).await.unwrap();
    assert_eq!(unread.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![3, 4]);
    // the next pages show the rest; then a push goes over nothing unseen and counts
    chat.written_unread(2, Target::User(1), &unread.messages);
    let last = chat.unread(2, Target::User(1), Some(4)).await.unwrap();
    assert_eq!(last.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![5, 6]);
    chat.written_unread(2, Target::User(1), &last.messages);
    let next = send(&env, 1, 2, "after").await.unwrap();
    // the read receipts of the pages came to this socket too; the message is the one that hands over
    let frame = loop {
        let f = pinned.outbound.recv().await.unwrap();
        if f.delivers.is_some() {
            break f;
        }
    };
    chat.written(&pinned, &frame);
    let moved = poll_until(Duration::from_secs(5), position, |p| *p == Some(next.message.seq)).await;
    assert_eq!(moved, Some(7));
    chat.disconnect(&mut pinned).await;
}
