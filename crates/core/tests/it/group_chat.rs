//! Chatting in groups end to end: fan-out to the members' connections, gap-free seqs under
//! concurrent senders, what a member sees (from their joining; nothing after leaving), removal
//! stopping pushes at once, unread and receipts from positions, typing, the conversation list.

use std::{collections::HashMap, time::Duration};

use chat_model::{ChatMessage, ReplyCode};
use reqwest::Method;
use serde_json::json;

use crate::{TestUser, Ws, spawn_app, spawn_with};

fn say(group: u64, text: &str) -> serde_json::Value {
    json!({"type": 1, "group": group, "content": text})
}

/// Reads pushed group messages until `n` have arrived (skipping events), in arrival order.
async fn pushed(ws: &mut Ws, n: usize) -> Vec<ChatMessage> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let f = ws.recv().await;
        if f.code == ReplyCode::Incoming {
            out.push(f.message.unwrap());
        }
    }
    out
}

#[tokio::test]
async fn concurrent_senders_get_gap_free_seqs_and_every_member_each_message_once_in_order() {
    let app = spawn_app().await;
    let users: Vec<TestUser> =
        futures_util::future::join_all((0..4).map(|i| app.user_owned(format!("member_{i:02}")))).await;
    let others: Vec<&TestUser> = users[1..].iter().collect();
    let id = app.group(&users[0], "busy", &others).await;
    let mut conns = Vec::new();
    for u in &users {
        conns.push(app.device(u).await);
    }
    const EACH: usize = 25;
    // every member sends EACH messages pipelined, all at once
    let sends = conns.iter_mut().enumerate().map(|(i, ws)| async move {
        for k in 0..EACH {
            ws.send_json(
                json!({"type": 1, "group": id, "content": format!("{i}-{k}"), "client_msg_id": format!("{i}-{k}")}),
            )
            .await;
        }
        // the replies, and what the others pushed meanwhile
        let (mut replies, mut got) = (Vec::new(), Vec::new());
        while replies.len() < EACH || got.len() < EACH * 3 {
            let f = ws.recv().await;
            match f.code {
                ReplyCode::Incoming => got.push(f.message.unwrap()),
                ReplyCode::Delivered => replies.push(f.message.unwrap()),
                other => panic!("unexpected {other:?}: {f:?}"),
            }
        }
        (replies, got)
    });
    let results = futures_util::future::join_all(sends).await;
    let mut all: Vec<i64> = Vec::new();
    for (i, (replies, got)) in results.iter().enumerate() {
        all.extend(replies.iter().map(|m| m.seq));
        assert!(got.iter().all(|m| m.from != users[i].id), "a member is not pushed its own send on the sending socket");
        assert!(got.windows(2).all(|w| w[0].seq < w[1].seq), "member {i} got its pushes in seq order");
        let mut seqs: Vec<i64> = got.iter().map(|m| m.seq).collect();
        seqs.dedup();
        assert_eq!(seqs.len(), EACH * 3, "member {i} got each of the others' messages once");
        assert!(replies.iter().chain(got).all(|m| m.group_id == Some(id) && m.to.is_none()));
    }
    all.sort_unstable();
    // seq 1 is the creation; the 100 sends take 2..=101, each once
    assert_eq!(all, (2..=(1 + 4 * EACH as i64)).collect::<Vec<_>>());
    let history = conns[2].group_history(id).await;
    assert_eq!(history.len(), 1 + 4 * EACH);
    assert_eq!(history.iter().map(|m| m.seq).collect::<Vec<_>>(), (1..=(1 + 4 * EACH as i64)).collect::<Vec<_>>());
    let by_seq: HashMap<i64, &str> = history.iter().map(|m| (m.seq, m.content.as_str())).collect();
    for (replies, _) in &results {
        for m in replies {
            assert_eq!(by_seq[&m.seq], m.content, "history holds what was sent");
        }
    }
}

#[tokio::test]
async fn a_member_sees_the_timeline_from_their_joining_and_nothing_after_leaving() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let carol = app.user("carol_01").await;
    let id = app.group(&alice, "club", &[&bob]).await;
    let mut a = app.device(&alice).await;
    let mut c = app.device(&carol).await;
    for text in ["before carol 1", "before carol 2"] {
        assert_eq!(a.answer(say(id, text)).await.code, ReplyCode::StoredOffline, "bob is offline");
    }
    assert_eq!(c.ask(json!({"type": 2, "group": id})).await.code, ReplyCode::NotMember);
    let (status, _) =
        app.call(Method::POST, &format!("/groups/{id}/members"), Some(json!({"user_ids": [carol.id]})), &alice).await;
    assert_eq!(status, 200);
    // carol is told she was added: the first message she sees
    let added = c.recv_until_system("added").await;
    assert_eq!((added.seq, added.from), (4, alice.id));
    assert_eq!(a.answer(say(id, "welcome carol")).await.code, ReplyCode::Delivered, "carol is online");
    assert_eq!(pushed(&mut c, 1).await[0].content, "welcome carol");
    let seen: Vec<i64> = c.group_history(id).await.iter().map(|m| m.seq).collect();
    assert_eq!(seen, [4, 5], "history from her joining");
    let caught = c.answer(json!({"type": 4, "group": id, "after_seq": 0})).await;
    assert_eq!(caught.messages.unwrap().iter().map(|m| m.seq).collect::<Vec<_>>(), [4, 5], "catch-up too");
    let unread = c.answer(json!({"type": 3, "group": id})).await;
    assert_eq!(unread.messages.unwrap().iter().map(|m| m.seq).collect::<Vec<_>>(), [4, 5], "and unread");

    // she leaves: nothing more, not even what she could read before
    let (status, _) = app.call(Method::DELETE, &format!("/groups/{id}/members/{}", carol.id), None, &carol).await;
    assert_eq!(status, 200);
    assert_eq!(c.recv_until_system("left").await.from, carol.id, "she hears of her own leaving");
    a.answer(say(id, "after carol left")).await;
    for frame in [json!({"type": 2, "group": id}), json!({"type": 4, "group": id, "after_seq": 0}), say(id, "hello?")] {
        assert_eq!(c.answer(frame.clone()).await.code, ReplyCode::NotMember, "{frame}");
    }
    // re-added, she sees from the new joining
    app.call(Method::POST, &format!("/groups/{id}/members"), Some(json!({"user_ids": [carol.id]})), &alice).await;
    let again = c.recv_until_system("added").await;
    assert_eq!(again.seq, 8);
    assert_eq!(c.group_history(id).await.iter().map(|m| m.seq).collect::<Vec<_>>(), [8]);

    // with history for new members, dave reads it all
    let app = spawn_with(|s| s.group.history_for_new_members = true).await;
    let (alice, bob) = app.two_users().await;
    let dave = app.user("dave_001").await;
    let id = app.group(&alice, "open book", &[&bob]).await;
    let mut a = app.device(&alice).await;
    a.answer(say(id, "old news")).await;
    app.call(Method::POST, &format!("/groups/{id}/members"), Some(json!({"user_ids": [dave.id]})), &alice).await;
    let mut d = app.device(&dave).await;
    assert_eq!(d.group_history(id).await.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
}

#[tokio::test]
async fn a_removed_member_stops_receiving_at_once() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let carol = app.user("carol_01").await;
    let id = app.group(&alice, "three", &[&bob, &carol]).await;
    let mut a = app.device(&alice).await;
    let mut c = app.device(&carol).await;
    let mut c_pinned = app.try_ws(Some(&carol.token), &format!("groupId={id}")).await.expect("upgrade");
    let hello = c_pinned.recv().await;
    assert_eq!((hello.code, hello.group_id, hello.peer_id), (ReplyCode::Connected, Some(id), None));
    a.answer(say(id, "one")).await;
    assert_eq!(pushed(&mut c, 1).await[0].content, "one");
    assert_eq!(pushed(&mut c_pinned, 1).await[0].content, "one");
    // the pinned socket sends without naming the group
    assert_eq!(c_pinned.ask(json!({"type": 1, "content": "from the pinned socket"})).await.code, ReplyCode::Delivered);
    assert_eq!(c_pinned.ask(json!({"type": 1, "to": alice.id, "content": "x"})).await.code, ReplyCode::InvalidFrame);

    let (status, _) = app.call(Method::DELETE, &format!("/groups/{id}/members/{}", carol.id), None, &alice).await;
    assert_eq!(status, 200);
    let removed = c.recv_until_system("removed").await;
    assert_eq!(removed.event.unwrap().users, [carol.id as i64]);
    for k in 0..5 {
        a.answer(say(id, &format!("after {k}"))).await;
    }
    assert!(!c.gets_within(ReplyCode::Incoming, Duration::from_millis(500)).await, "nothing after the removal");
    assert_eq!(c.answer(say(id, "still here?")).await.code, ReplyCode::NotMember);
    assert_eq!(c_pinned.answer(json!({"type": 1, "content": "me too?"})).await.code, ReplyCode::NotMember);
}

#[tokio::test]
async fn unread_and_receipts_follow_each_members_position() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let carol = app.user("carol_01").await;
    let id = app.group(&alice, "readers", &[&bob, &carol]).await;
    let mut a = app.device(&alice).await;
    for k in 1..=3 {
        a.answer(say(id, &format!("news {k}"))).await;
    }
    let unread_of = |list: &[serde_json::Value]| {
        let g = list.iter().find(|c| c["group"]["id"] == id).expect("the group is listed").clone();
        (g["unread"].as_u64().unwrap(), g)
    };
    // the creation is alice's own: bob and carol have it and the three messages unread; alice none
    assert_eq!(unread_of(&app.conversations(&bob).await).0, 4);
    assert_eq!(unread_of(&app.conversations(&carol).await).0, 4);
    let (mine, listed) = unread_of(&app.conversations(&alice).await);
    assert_eq!(mine, 0);
    assert_eq!(listed["group"], json!({"id": id, "name": "readers", "member_count": 3}));
    assert_eq!(listed["last_message"]["content"], "news 3");
    assert_eq!(listed["last_message"]["from"], alice.id);
    assert!(listed.get("peer").is_none() && listed.get("online").is_none());

    // bob reads up to seq 3 on one device: his other device hears of it, alice does not
    let mut b1 = app.device(&bob).await;
    let mut b2 = app.device(&bob).await;
    b1.send_json(json!({"type": 5, "group": id, "read_seq": 3})).await;
    let receipt = b1.next_with(ReplyCode::ReadReceipt).await;
    assert_eq!((receipt.group_id, receipt.user_id, receipt.read_seq), (Some(id), Some(bob.id), Some(3)));
    assert_eq!(b2.next_with(ReplyCode::ReadReceipt).await.read_seq, Some(3));
    assert!(!a.gets_within(ReplyCode::ReadReceipt, Duration::from_millis(300)).await, "receipts stay with the reader");
    assert_eq!(unread_of(&app.conversations(&bob).await).0, 1);
    assert_eq!(unread_of(&app.conversations(&carol).await).0, 4);
    let unread = b1.answer(json!({"type": 3, "group": id})).await;
    assert_eq!(unread.messages.unwrap().iter().map(|m| m.content.clone()).collect::<Vec<_>>(), ["news 3"]);
    // "read by k of n": every member's position is in the group's view
    let positions = |view: serde_json::Value| -> Vec<(u64, i64)> {
        view["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["id"].as_u64().unwrap(), m["read_seq"].as_i64().unwrap()))
            .collect()
    };
    // asked five times a second: the read mark lands within read_mark_delay_ms (1 s), and a
    // faster poll would meet the per-user read limit (10/s)
    let mut view = app.group_view(&alice, id).await;
    for _ in 0..25 {
        if positions(view.clone()).contains(&(bob.id, 4)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        view = app.group_view(&alice, id).await;
    }
    assert_eq!(positions(view), [(alice.id, 0), (bob.id, 4), (carol.id, 0)], "the unread page moved bob to 4");
    // positions never go back, and stop at the last seq
    b1.send_json(json!({"type": 5, "group": id, "read_seq": 1})).await;
    assert_eq!(b1.next_with(ReplyCode::ReadReceipt).await.read_seq, Some(4));
    b1.send_json(json!({"type": 5, "group": id, "read_seq": 99})).await;
    assert_eq!(b1.next_with(ReplyCode::ReadReceipt).await.read_seq, Some(4));
}

#[tokio::test]
async fn typing_reaches_the_other_online_members() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let carol = app.user("carol_01").await;
    let eve = app.user("eve_0001").await;
    let id = app.group(&alice, "typists", &[&bob, &carol]).await;
    let (mut a, mut b, mut c, mut e) =
        (app.device(&alice).await, app.device(&bob).await, app.device(&carol).await, app.device(&eve).await);
    a.send_json(json!({"type": 6, "group": id})).await;
    for ws in [&mut b, &mut c] {
        let t = ws.next_with(ReplyCode::Typing).await;
        assert_eq!((t.user_id, t.group_id), (Some(alice.id), Some(id)));
    }
    assert!(!a.gets_within(ReplyCode::Typing, Duration::from_millis(200)).await, "not to the typist");
    assert!(!e.gets_within(ReplyCode::Typing, Duration::from_millis(200)).await, "not to outsiders");
}

impl crate::TestApp {
    /// [`crate::TestApp::user`] with an owned name (for many users at once).
    pub async fn user_owned(&self, name: String) -> TestUser {
        self.user(&name).await
    }
}
