//! The device connection (`/ws` without `toUid`): every conversation of its user on one
//! socket, catch-up, read receipts, typing and presence; and that `?toUid=` is the same engine.

use std::time::Duration;

use bson::doc;
use chat_model::{ReplyCode, ServerFrame};
use serde_json::json;

use crate::{TestApp, TestUser, Ws, spawn_app, spawn_with};

impl TestApp {
    /// Opens a device connection and reads its welcome.
    pub async fn device(&self, user: &TestUser) -> Ws {
        let mut ws = self.try_ws(Some(&user.token), "").await.expect("upgrade");
        let hello = ws.recv().await;
        assert_eq!((hello.code, hello.user_id, hello.peer_id), (ReplyCode::Connected, Some(user.id), None));
        ws
    }

    /// `user`'s conversation list.
    pub async fn conversations(&self, user: &TestUser) -> Vec<serde_json::Value> {
        let (status, body) = self.get_auth("/conversations", Some(&user.token)).await;
        assert_eq!(status, 200, "{body}");
        body["data"].as_array().cloned().unwrap_or_default()
    }
}

impl Ws {
    /// The next frame with `code`, skipping others.
    pub async fn next_with(&mut self, code: ReplyCode) -> ServerFrame {
        loop {
            let f = self.next_frame().await;
            if f.code == code {
                return f;
            }
        }
    }

    /// Sends a read receipt and returns its reply (a 50010, which [`Ws::recv`] skips as an event).
    pub async fn read_up_to(&mut self, to: u64, read_seq: i64) -> ServerFrame {
        self.send_json(json!({"type": 5, "to": to, "read_seq": read_seq})).await;
        self.next_with(ReplyCode::ReadReceipt).await
    }

    /// Whether a frame with `code` arrives within `within` (skipping others).
    pub async fn gets_within(&mut self, code: ReplyCode, within: Duration) -> bool {
        tokio::time::timeout(within, self.next_with(code)).await.is_ok()
    }
}

fn send(to: u64, text: &str) -> serde_json::Value {
    json!({"type": 1, "to": to, "content": text})
}

#[tokio::test]
async fn a_device_connection_carries_every_conversation_and_the_users_own_messages() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let carol = app.user("carol_01").await;
    let mut bob_phone = app.device(&bob).await;
    let mut bob_laptop = app.device(&bob).await;
    let mut bob_pinned = app.ws(&bob, &alice).await;
    let mut alice_dev = app.device(&alice).await;
    let mut carol_dev = app.device(&carol).await;

    // a new conversation reaches the recipient as any message does: no polling
    let r = alice_dev.ask(send(bob.id, "hi bob")).await;
    assert_eq!(r.code, ReplyCode::Delivered, "{r:?}");
    let r = carol_dev.ask(send(bob.id, "hi from carol")).await;
    assert_eq!(r.code, ReplyCode::Delivered);
    for ws in [&mut bob_phone, &mut bob_laptop] {
        let a = ws.recv().await;
        let c = ws.recv().await;
        assert_eq!((a.code, a.message.unwrap().from), (ReplyCode::Incoming, alice.id));
        assert_eq!((c.code, c.message.unwrap().from), (ReplyCode::Incoming, carol.id));
    }
    // the pinned socket gets only its conversation, the same frame
    let pinned = bob_pinned.recv().await;
    assert_eq!(pinned.message.as_ref().unwrap().content, "hi bob");

    // bob answers from the phone: the laptop and the pinned socket see it too, alice gets it
    let r = bob_phone.ask(send(alice.id, "hello alice")).await;
    assert_eq!(r.code, ReplyCode::Delivered);
    assert_eq!(r.message.as_ref().unwrap().seq, 2);
    for ws in [&mut bob_laptop, &mut bob_pinned, &mut alice_dev] {
        let f = ws.recv().await;
        assert_eq!(f.message.unwrap().content, "hello alice");
    }
    // a pinned socket's send reaches the sender's device connections
    bob_pinned.ask(json!({"type": 1, "content": "from the pinned tab"})).await;
    assert_eq!(bob_phone.recv().await.message.unwrap().content, "from the pinned tab");

    // history, unread and catch-up name their conversation
    let h = bob_phone.ask(json!({"type": 2, "to": carol.id})).await;
    assert_eq!(h.code, ReplyCode::History);
    assert_eq!(h.messages.unwrap().len(), 1);
}

#[tokio::test]
async fn frames_must_name_a_conversation_the_socket_carries() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let mut dev = app.device(&alice).await;
    for frame in [json!({"type": 1, "content": "x"}), json!({"type": 4, "after_seq": 0}), json!({"type": 6})] {
        let r = dev.ask(frame).await;
        assert_eq!(r.code, ReplyCode::InvalidFrame);
        assert!(r.content.contains("`to`"), "{r:?}");
    }
    let r = dev.ask(send(bob.id + 100, "nobody")).await;
    assert_eq!((r.code, r.content.as_str()), (ReplyCode::InvalidFrame, "`to` names no user"), "{r:?}");
    let r = dev.ask(send(alice.id, "me")).await;
    assert_eq!(r.code, ReplyCode::InvalidFrame, "{r:?}");
    let mut pinned = app.ws(&alice, &bob).await;
    let r = pinned.ask(json!({"type": 1, "to": alice.id + bob.id + 7, "content": "x"})).await;
    assert_eq!(r.code, ReplyCode::InvalidFrame);
    let r = pinned.ask(json!({"type": 1, "to": bob.id, "content": "ok"})).await;
    assert_eq!(r.code, ReplyCode::StoredOffline);
    // nothing was stored for the refused ones
    assert_eq!(app.services.chat.count(alice.id, bob.id).await.unwrap(), 1);
}

#[tokio::test]
async fn catch_up_pages_after_a_seq_oldest_first() {
    let app = spawn_with(|s| s.chat.no_reply_limit = 1000).await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.device(&alice).await;
    for i in 1..=7 {
        a.ask(send(bob.id, &format!("m{i}"))).await;
    }
    let mut b = app.device(&bob).await;
    let page = b.ask(json!({"type": 4, "to": alice.id, "after_seq": 2, "limit": 3})).await;
    assert_eq!(page.code, ReplyCode::CatchUp);
    let seqs: Vec<i64> = page.messages.unwrap().iter().map(|m| m.seq).collect();
    assert_eq!((seqs, page.more), (vec![3, 4, 5], Some(true)));
    let page = b.ask(json!({"type": 4, "to": alice.id, "after_seq": 5})).await;
    let seqs: Vec<i64> = page.messages.unwrap().iter().map(|m| m.seq).collect();
    assert_eq!((seqs, page.more), (vec![6, 7], Some(false)));
    assert_eq!(b.ask(json!({"type": 4, "to": alice.id, "after_seq": 7})).await.code, ReplyCode::End);
    // catch-up marks nothing read
    let convs = app.conversations(&bob).await;
    assert_eq!(convs[0]["unread"], 7);
    assert_eq!(
        b.ask(json!({"type": 4, "to": alice.id, "after_seq": 0, "limit": 0})).await.code,
        ReplyCode::InvalidFrame
    );
}

#[tokio::test]
async fn read_receipts_move_one_position_that_only_grows_and_tell_both_sides() {
    let app = spawn_with(|s| s.chat.no_reply_limit = 1000).await;
    let (alice, bob) = app.two_users().await;
    let mut alice_dev = app.device(&alice).await;
    for i in 1..=5 {
        alice_dev.ask(send(bob.id, &format!("m{i}"))).await;
    }
    let mut bob_phone = app.device(&bob).await;
    let mut bob_laptop = app.device(&bob).await;
    let db = app.ts.mongo().await;
    let msgs = db.collection::<bson::Document>("messages");
    let before = msgs.find_one(doc! {"seq": 2}).await.unwrap().unwrap();

    let r = bob_phone.read_up_to(alice.id, 3).await;
    assert_eq!((r.code, r.user_id, r.read_seq), (ReplyCode::ReadReceipt, Some(bob.id), Some(3)));
    let conv = r.conv.clone().unwrap();
    // bob's other device and alice hear of it
    for ws in [&mut bob_laptop, &mut alice_dev] {
        let f = ws.next_with(ReplyCode::ReadReceipt).await;
        assert_eq!((f.conv.as_deref(), f.user_id, f.read_seq), (Some(conv.as_str()), Some(bob.id), Some(3)));
    }
    // the flags follow the position, with their expiry refreshed
    let unread = msgs.count_documents(doc! {"to": bob.id as i64, "read": false}).await.unwrap();
    assert_eq!(unread, 2);
    let after = msgs.find_one(doc! {"seq": 2}).await.unwrap().unwrap();
    assert!(after.get_datetime("expire_at").unwrap() > before.get_datetime("expire_at").unwrap());
    // never backwards; clamped to the last seq
    let r = bob_phone.read_up_to(alice.id, 1).await;
    assert_eq!(r.read_seq, Some(3));
    let r = bob_phone.read_up_to(alice.id, 1000).await;
    assert_eq!(r.read_seq, Some(5));
    assert_eq!(msgs.count_documents(doc! {"to": bob.id as i64, "read": false}).await.unwrap(), 0);
    // alice's own position follows her sends (a moment later, with the read marks)
    let convs = chat_testkit::poll_until(
        Duration::from_secs(5),
        || app.conversations(&alice),
        |c| c[0]["read_seq"].as_i64() == Some(5),
    )
    .await;
    assert_eq!((convs[0]["peer_read_seq"].as_i64(), convs[0]["read_seq"].as_i64()), (Some(5), Some(5)));
    let convs = app.conversations(&bob).await;
    assert_eq!((convs[0]["unread"].as_u64(), convs[0]["last_seq"].as_i64()), (Some(0), Some(5)));
}

#[tokio::test]
async fn a_push_to_a_device_connection_is_delivered_not_read() {
    let app = spawn_with(|s| s.chat.read_mark_delay_ms = 50).await;
    let (alice, bob) = app.two_users().await;
    let mut b = app.device(&bob).await;
    let mut a = app.device(&alice).await;
    assert_eq!(a.ask(send(bob.id, "seen?")).await.code, ReplyCode::Delivered);
    assert_eq!(b.recv().await.code, ReplyCode::Incoming);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let convs = app.conversations(&bob).await;
    assert_eq!(convs[0]["unread"], 1, "delivered, not read");
    assert_eq!(convs[0]["online"], true);
    // an unread fetch marks read what it returned, once written
    let page = b.ask(json!({"type": 3, "to": alice.id})).await;
    assert_eq!(page.code, ReplyCode::Unread);
    assert_eq!(b.next_with(ReplyCode::ReadReceipt).await.read_seq, Some(1));
    assert_eq!(app.conversations(&bob).await[0]["unread"], 0);
    // the sender hears it was read
    assert_eq!(a.next_with(ReplyCode::ReadReceipt).await.read_seq, Some(1));
}

#[tokio::test]
async fn typing_is_forwarded_at_most_every_two_seconds_and_never_stored() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.device(&alice).await;
    let mut b = app.device(&bob).await;
    a.send_json(json!({"type": 6, "to": bob.id})).await;
    let t = b.next_with(ReplyCode::Typing).await;
    assert_eq!(t.user_id, Some(alice.id));
    assert!(t.conv.is_some());
    for _ in 0..5 {
        a.send_json(json!({"type": 6, "to": bob.id})).await;
    }
    assert!(!b.gets_within(ReplyCode::Typing, Duration::from_millis(1200)).await, "throttled");
    // no reply to an accepted one: the next reply is the send's
    assert_eq!(a.ask(send(bob.id, "done typing")).await.code, ReplyCode::Delivered);
    assert_eq!(app.services.chat.count(alice.id, bob.id).await.unwrap(), 1);
    // to someone who is no user: an error frame
    let r = a.ask(json!({"type": 6, "to": bob.id + 100})).await;
    assert_eq!(r.code, ReplyCode::InvalidFrame, "{r:?}");
}

#[tokio::test]
async fn presence_events_on_the_first_connection_and_the_last() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let mut a = app.device(&alice).await;
    {
        let mut b = app.device(&bob).await;
        b.ask(send(alice.id, "hello")).await;
    }
    // bob's only connection closed: alice (who has a conversation with him) hears he left
    let off = a.next_with(ReplyCode::Presence).await;
    assert_eq!((off.user_id, off.online), (Some(bob.id), Some(false)));
    assert_eq!(app.conversations(&alice).await[0]["online"], false);
    let b1 = app.device(&bob).await;
    let on = a.next_with(ReplyCode::Presence).await;
    assert_eq!((on.user_id, on.online), (Some(bob.id), Some(true)));
    // a second connection is not news, nor is closing one of two
    let b2 = app.device(&bob).await;
    drop(b2);
    assert!(!a.gets_within(ReplyCode::Presence, Duration::from_millis(800)).await);
    assert_eq!(app.conversations(&alice).await[0]["online"], true);
    drop(b1);
    let off = a.next_with(ReplyCode::Presence).await;
    assert_eq!(off.online, Some(false));
}
