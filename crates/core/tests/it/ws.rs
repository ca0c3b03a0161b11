use chat_model::ReplyCode;
use futures_util::SinkExt as _;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::{spawn_app, spawn_with};

#[tokio::test]
async fn the_socket_is_authenticated_before_the_upgrade() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let q = format!("toUid={}", bob.id);
    assert_eq!(app.try_ws(None, &q).await.err(), Some(401));
    assert_eq!(app.try_ws(Some("made-up-token"), &q).await.err(), Some(401));
    // the original's ?uid= is ignored: no one speaks as someone else
    assert_eq!(app.try_ws(None, &format!("uid={}&{q}", alice.id)).await.err(), Some(401));
    assert_eq!(app.try_ws(Some(&alice.token), &format!("toUid={}", bob.id + 100)).await.err(), Some(404));
    assert_eq!(app.try_ws(Some(&alice.token), "toUid=abc").await.err(), Some(400));
    assert_eq!(app.try_ws(Some(&alice.token), "toUid=").await.err(), Some(400));
    assert_eq!(app.try_ws(Some(&alice.token), &format!("toUid={}", alice.id)).await.err(), Some(400));
    // browsers pass the token in the query
    let mut ws = app.try_ws(None, &format!("{q}&token={}", alice.token)).await.expect("query token");
    let hello = ws.recv().await;
    assert_eq!((hello.code, hello.user_id, hello.peer_id), (ReplyCode::Connected, Some(alice.id), Some(bob.id)));
}

#[tokio::test]
async fn offline_then_unread_then_live_then_history() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;

    let r = a.ask(json!({"type": 1, "content": "are you there?"})).await;
    assert_eq!(r.code, ReplyCode::StoredOffline, "{r:?}");
    let m = r.message.unwrap();
    assert_eq!((m.seq, m.from, m.to, m.read), (1, alice.id, Some(bob.id), false));
    assert_eq!(m.id.len(), 24);
    assert!(m.created_at.ends_with('Z'));

    let mut b = app.ws(&bob, &alice).await;
    let r = b.ask(json!({"type": 3})).await;
    assert_eq!(r.code, ReplyCode::Unread, "{r:?}");
    let list = r.messages.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].content, "are you there?");
    let r = b.ask(json!({"type": 3})).await;
    assert_eq!((r.code, r.content.as_str()), (ReplyCode::End, "no unread messages"));

    let r = b.ask(json!({"type": 1, "content": "yes!", "client_msg_id": "b-1"})).await;
    assert_eq!(r.code, ReplyCode::Delivered, "{r:?}");
    assert_eq!(r.client_msg_id.as_deref(), Some("b-1"));
    let pushed = a.recv().await;
    assert_eq!(pushed.code, ReplyCode::Incoming);
    assert_eq!(pushed.message.as_ref().unwrap(), r.message.as_ref().unwrap());
    assert_eq!(pushed.message.unwrap().seq, 2);

    for i in 3..=12 {
        assert_eq!(a.ask(json!({"type": 1, "content": format!("m{i}")})).await.code, ReplyCode::Delivered);
        assert_eq!(b.recv().await.message.unwrap().seq, i);
    }
    let page = a.ask(json!({"type": 2})).await;
    assert_eq!(page.code, ReplyCode::History);
    let seqs: Vec<i64> = page.messages.unwrap().iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (3..=12).rev().collect::<Vec<_>>(), "newest first, 10 by default");
    let page = a.ask(json!({"type": 2, "before_seq": 3, "limit": 5})).await;
    assert_eq!(page.messages.unwrap().iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2, 1]);
    let end = a.ask(json!({"type": 2, "before_seq": 1})).await;
    assert_eq!(end.code, ReplyCode::End);
}

#[tokio::test]
async fn bad_input_gets_an_error_frame_and_the_connection_stays() {
    let app = spawn_with(|s| s.chat.max_content_bytes = 100).await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;
    a.send_text("not json").await;
    assert_eq!(a.recv().await.code, ReplyCode::InvalidFrame);
    a.stream.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(a.recv().await.code, ReplyCode::BinaryNotSupported);
    assert_eq!(a.ask(json!({"type": 7})).await.code, ReplyCode::UnknownType);
    assert_eq!(a.ask(json!({"type": "1", "content": "x"})).await.code, ReplyCode::InvalidFrame);
    assert_eq!(a.ask(json!({"type": 1, "content": ""})).await.code, ReplyCode::EmptyContent);
    assert_eq!(a.ask(json!({"type": 1})).await.code, ReplyCode::EmptyContent);
    let big = a.ask(json!({"type": 1, "content": "x".repeat(101), "client_msg_id": "big"})).await;
    assert_eq!(big.code, ReplyCode::ContentTooLarge);
    assert_eq!(big.client_msg_id.as_deref(), Some("big"));
    assert!(big.content.contains("100"), "{}", big.content);
    assert_eq!(a.ask(json!({"type": 2, "limit": 0})).await.code, ReplyCode::InvalidFrame);
    // nothing was stored, and the connection still works
    assert_eq!(app.services.chat.count(alice.id, bob.id).await.unwrap(), 0);
    let ok = a.ask(json!({"type": 1, "content": "x".repeat(100)})).await;
    assert_eq!(ok.code, ReplyCode::StoredOffline);
    assert_eq!(ok.message.unwrap().seq, 1);
}

#[tokio::test]
async fn a_frame_over_the_frame_limit_closes_with_1009() {
    let app = spawn_with(|s| s.chat.max_frame_bytes = 8192).await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;
    a.send_json(json!({"type": 1, "content": "x".repeat(10_000)})).await;
    assert_eq!(a.closed_with().await, 1009);
    assert_eq!(app.services.chat.count(alice.id, bob.id).await.unwrap(), 0);
}

#[tokio::test]
async fn the_no_reply_limit_refuses_the_fourth_message() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;
    for _ in 0..3 {
        assert_eq!(a.ask(json!({"type": 1, "content": "hello?"})).await.code, ReplyCode::StoredOffline);
    }
    let refused = a.ask(json!({"type": 1, "content": "hello??"})).await;
    assert_eq!(refused.code, ReplyCode::NoReplyLimit);
    assert_eq!(app.services.chat.count(alice.id, bob.id).await.unwrap(), 3);
    let mut b = app.ws(&bob, &alice).await;
    assert_eq!(b.ask(json!({"type": 1, "content": "hi"})).await.code, ReplyCode::Delivered);
    assert_eq!(a.recv().await.code, ReplyCode::Incoming);
    assert_eq!(a.ask(json!({"type": 1, "content": "finally"})).await.code, ReplyCode::Delivered);
}

#[tokio::test]
async fn a_resend_with_the_same_client_msg_id_stores_once() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;
    let first = a.ask(json!({"type": 1, "content": "once", "client_msg_id": "k-1"})).await;
    drop(a);
    // a new connection (a reconnect) resends
    let mut a = app.ws(&alice, &bob).await;
    let again = a.ask(json!({"type": 1, "content": "once", "client_msg_id": "k-1"})).await;
    assert_eq!(first.code, again.code);
    assert_eq!(first.message, again.message);
    assert_eq!(app.services.chat.count(alice.id, bob.id).await.unwrap(), 1);
}

#[tokio::test]
async fn every_connection_of_a_user_gets_every_message() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let mut phone = app.ws(&bob, &alice).await;
    let mut laptop = app.ws(&bob, &alice).await;
    let mut a = app.ws(&alice, &bob).await;
    let mut a_other_tab = app.ws(&alice, &bob).await;
    let r = a.ask(json!({"type": 1, "content": "to both"})).await;
    assert_eq!(r.code, ReplyCode::Delivered);
    for ws in [&mut phone, &mut laptop, &mut a_other_tab] {
        let f = ws.recv().await;
        assert_eq!(f.code, ReplyCode::Incoming);
        assert_eq!(f.message.unwrap().content, "to both");
    }
}

#[tokio::test]
async fn logout_closes_the_open_sockets_of_that_session() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;
    let mut b = app.ws(&bob, &alice).await;
    assert_eq!(app.post("/user/logout", json!({}), Some(&alice.token)).await.0, 200);
    let ended = a.recv().await;
    assert_eq!(ended.code, ReplyCode::SessionEnded);
    assert_eq!(a.closed_with().await, 4001);
    assert_eq!(app.try_ws(Some(&alice.token), &format!("toUid={}", bob.id)).await.err(), Some(401));
    // bob's session is untouched
    assert_eq!(b.ask(json!({"type": 3})).await.code, ReplyCode::End);
}

#[tokio::test]
async fn a_session_ended_elsewhere_closes_at_the_next_heartbeat() {
    let app = spawn_with(|s| s.websocket.ping_interval_secs = 1).await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;
    // another node logs the session out: its row and cache entry go, this hub is not told
    let user = app.services.register.authenticate(&alice.token).await.unwrap();
    let stores = chat_dao::Stores::connect(&app.ts.settings).await.unwrap();
    assert!(chat_dao::DaoGroup::new(&stores, &app.ts.settings).session.delete(&user.session).await.unwrap());
    assert_eq!(a.recv().await.code.as_u32(), 50108);
    assert_eq!(a.closed_with().await, 4001);
}

/// Redis restarts empty: nobody is logged out, live connections go on, and sends to an
/// answered conversation are not limited again.
#[tokio::test]
async fn a_redis_that_lost_everything_logs_nobody_out() {
    let app = spawn_with(|s| s.websocket.ping_interval_secs = 1).await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;
    let mut b = app.ws(&bob, &alice).await;
    assert_eq!(a.ask(json!({"type": 1, "content": "hi"})).await.code.as_u32(), 50004);
    b.recv().await;
    assert_eq!(b.ask(json!({"type": 1, "content": "hello"})).await.code.as_u32(), 50004);
    a.recv().await;
    flush_redis(&app).await;
    assert_eq!(app.get_auth("/user/me", Some(&alice.token)).await.0, 200);
    // a heartbeat later, the connections are still open and still limit-free
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    for i in 0..5 {
        let reply = a.ask(json!({"type": 1, "content": format!("m{i}")})).await;
        assert_eq!(reply.code.as_u32(), 50004, "{reply:?}");
    }
}

async fn flush_redis(app: &crate::TestApp) {
    let client = redis::Client::open(app.ts.settings.redis.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}:*", app.ts.settings.redis.key_prefix)).query_async(&mut c).await.unwrap();
    assert!(!keys.is_empty());
    let _: () = redis::cmd("DEL").arg(keys).query_async(&mut c).await.unwrap();
}

/// Pings every second; silent for two seconds is too long.
fn fast_pings(s: &mut chat_model::Settings) {
    s.websocket.ping_interval_secs = 1;
    s.websocket.client_timeout_secs = 2;
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_timeout() {
    // no pings in the window, so the client sends nothing at all (not even pongs)
    let app = spawn_with(|s| {
        s.websocket.ping_interval_secs = 60;
        s.websocket.client_timeout_secs = 2;
    })
    .await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;
    assert!(app.services.chat.is_online(alice.id).await.unwrap());
    let started = std::time::Instant::now();
    assert_eq!(a.closed_with().await, 1001);
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500), "{:?}", started.elapsed());
    // presence is cleared when the connection ends
    let online = chat_testkit::poll_until(
        std::time::Duration::from_millis(2500),
        || app.services.chat.is_online(alice.id),
        |r| !matches!(r, Ok(true)),
    )
    .await;
    assert!(!online.unwrap());
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_connected() {
    let app = spawn_with(fast_pings).await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;
    // reading answers the server's pings (tungstenite pongs automatically)
    let read = tokio::time::timeout(std::time::Duration::from_millis(3500), a.recv()).await;
    assert!(read.is_err(), "no frame expected, only pings");
    assert_eq!(a.ask(json!({"type": 3})).await.code, ReplyCode::End);
}

#[tokio::test]
async fn shutdown_closes_sockets_with_going_away() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;
    app.stopper.stop().await;
    assert_eq!(a.closed_with().await, 1001);
}

#[tokio::test]
async fn pipelined_sends_are_answered_in_order_with_rising_seqs() {
    let app = spawn_with(|s| s.chat.no_reply_limit = 1000).await;
    let (alice, bob) = app.two_users().await;
    let mut b = app.ws(&bob, &alice).await;
    let mut a = app.ws(&alice, &bob).await;
    for i in 0..30 {
        a.send_json(json!({"type": 1, "content": format!("m{i}"), "client_msg_id": format!("p{i}")})).await;
    }
    a.send_json(json!({"type": 9})).await;
    for i in 0..30 {
        let r = a.recv().await;
        assert_eq!(r.code, ReplyCode::Delivered, "{r:?}");
        assert_eq!(r.client_msg_id, Some(format!("p{i}")), "replies in frame order");
        assert_eq!(r.message.unwrap().seq, i + 1, "stored in frame order");
    }
    assert_eq!(a.recv().await.code, ReplyCode::UnknownType);
    for i in 0..30 {
        assert_eq!(b.recv().await.message.unwrap().seq, i + 1);
    }
}

#[tokio::test]
async fn a_history_request_sees_the_sends_before_it() {
    let app = spawn_with(|s| s.chat.no_reply_limit = 1000).await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.ws(&alice, &bob).await;
    for i in 0..5 {
        a.send_json(json!({"type": 1, "content": format!("m{i}")})).await;
    }
    a.send_json(json!({"type": 2})).await;
    for _ in 0..5 {
        assert_eq!(a.recv().await.code, ReplyCode::StoredOffline);
    }
    let page = a.recv().await;
    assert_eq!(page.code, ReplyCode::History);
    assert_eq!(page.messages.unwrap().len(), 5);
}
