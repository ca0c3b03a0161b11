//! Read state from positions, property-style: a fixed-seed random run of sends, pushes, read
//! receipts, unread fetches and reconnects by two users on several connections each (device
//! connections and pinned ones). After every step the unread count of the conversation list
//! equals the `read: false` messages to that user in MongoDB, and positions only grow. The same
//! in a group of three on device and `?groupId=` sockets, one member leaving and coming back:
//! unread is what others sent after the member's position (and after their joining).

use std::time::Duration;

use bson::doc;
use chat_model::{ReplyCode, ServerFrame};
use chat_testkit::poll_until;
use serde_json::json;

use crate::{TestApp, TestUser, Ws, spawn_with};

/// A small deterministic generator (xorshift64*): the same run every time.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

struct Conn {
    ws: Ws,
    /// The peer it is pinned to; None: a device connection.
    pinned: bool,
}

/// Reads until a frame with one of `codes` (the reply), skipping pushes and events.
async fn reply(ws: &mut Ws, codes: &[ReplyCode]) -> ServerFrame {
    loop {
        let f = ws.next_frame().await;
        if codes.contains(&f.code) {
            return f;
        }
        assert!(f.code.as_u32() < 50100, "unexpected error frame {f:?}");
    }
}

async fn open(app: &TestApp, user: &TestUser, peer: &TestUser, pinned: bool) -> Conn {
    let ws = if pinned { app.ws(user, peer).await } else { app.device(user).await };
    Conn { ws, pinned }
}

/// (unread in the list, read_seq, peer_read_seq) of `user`'s only conversation.
async fn listed(app: &TestApp, user: &TestUser) -> (u64, i64, i64) {
    let convs = app.conversations(user).await;
    convs.first().map_or((0, 0, 0), |c| {
        (c["unread"].as_u64().unwrap(), c["read_seq"].as_i64().unwrap(), c["peer_read_seq"].as_i64().unwrap())
    })
}

#[tokio::test]
async fn unread_always_equals_the_unread_flags_and_positions_only_grow() {
    let app = spawn_with(|s| {
        s.chat.read_mark_delay_ms = 20;
        s.chat.no_reply_limit = 100_000;
        s.limits.reads_per_sec = 0;
        s.limits.sends_per_sec = 0;
    })
    .await;
    let (alice, bob) = app.two_users().await;
    let users = [&alice, &bob];
    let mut conns: Vec<Vec<Conn>> = Vec::new();
    for (me, peer) in [(&alice, &bob), (&bob, &alice)] {
        let mut mine = Vec::new();
        for pinned in [false, false, true] {
            mine.push(open(&app, me, peer, pinned).await);
        }
        conns.push(mine);
    }
    let msgs = app.ts.mongo().await.collection::<bson::Document>("messages");
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut last_seq = 0i64;
    let mut seen = [(0i64, 0i64); 2];
    let steps = 240;
    for step in 0..steps {
        let u = rng.below(2) as usize;
        let (me, peer) = (users[u], users[1 - u]);
        let c = rng.below(conns[u].len() as u64) as usize;
        let kind = rng.below(10);
        let conn = &mut conns[u][c];
        match kind {
            0..=3 => {
                conn.ws.send_json(json!({"type": 1, "to": peer.id, "content": format!("step {step}")})).await;
                let r = reply(&mut conn.ws, &[ReplyCode::Delivered, ReplyCode::StoredOffline]).await;
                last_seq = r.message.unwrap().seq;
            }
            4..=5 => {
                let seq = rng.below(last_seq as u64 + 3) as i64;
                conn.ws.send_json(json!({"type": 5, "to": peer.id, "read_seq": seq})).await;
                let r = reply(&mut conn.ws, &[ReplyCode::ReadReceipt]).await;
                assert!(r.read_seq.unwrap() <= last_seq.max(0));
            }
            6..=7 => {
                conn.ws.send_json(json!({"type": 3, "to": peer.id})).await;
                reply(&mut conn.ws, &[ReplyCode::Unread, ReplyCode::End]).await;
            }
            _ => {
                // a reconnect: the connection goes (what it was handed and never wrote stays
                // unread) and another of the same kind comes
                let pinned = conn.pinned;
                let fresh = open(&app, me, peer, pinned).await;
                let old = std::mem::replace(conn, fresh);
                drop(old);
            }
        }
        for (i, user) in users.iter().enumerate() {
            let to = user.id as i64;
            let agreed = poll_until(
                Duration::from_secs(5),
                || async {
                    let flags = msgs.count_documents(doc! {"to": to, "read": false}).await.unwrap();
                    (listed(&app, user).await, flags)
                },
                |((unread, _, _), flags)| unread == flags,
            )
            .await;
            let ((unread, read_seq, peer_read_seq), flags) = agreed;
            assert_eq!(unread, flags, "step {step}: {}'s unread count and flags", user.user_name);
            assert!(read_seq >= seen[i].0 && peer_read_seq >= seen[i].1, "step {step}: a position went back");
            assert!(read_seq <= last_seq && peer_read_seq <= last_seq);
            seen[i] = (read_seq, peer_read_seq);
        }
    }
    assert!(last_seq > 50, "the run sent messages: {last_seq}");
}

/// A member's (unread in the list, read_seq in the list), None when the group is not listed.
async fn listed_group(app: &TestApp, user: &TestUser, group: u64) -> Option<(u64, i64)> {
    let convs = app.conversations(user).await;
    let g = convs.iter().find(|c| c["group"]["id"] == group)?;
    Some((g["unread"].as_u64().unwrap(), g["read_seq"].as_i64().unwrap()))
}

#[tokio::test]
async fn in_a_group_unread_is_what_others_sent_after_each_members_position() {
    use reqwest::Method;
    let app = spawn_with(|s| {
        s.chat.read_mark_delay_ms = 20;
        s.limits.reads_per_sec = 0;
        s.limits.sends_per_sec = 0;
    })
    .await;
    let (alice, bob) = app.two_users().await;
    let carol = app.user("carol_01").await;
    let users = [&alice, &bob, &carol];
    let group = app.group(&alice, "property", &[&bob, &carol]).await;
    let pinned = format!("groupId={group}");
    let open = |u: &TestUser, pin: bool| {
        let (app, pinned, token) = (&app, pinned.clone(), u.token.clone());
        async move {
            let mut ws = app.try_ws(Some(&token), if pin { &pinned } else { "" }).await.expect("upgrade");
            assert_eq!(ws.recv().await.code, ReplyCode::Connected);
            Conn { ws, pinned: pin }
        }
    };
    let mut conns: Vec<Vec<Conn>> = Vec::new();
    for u in users {
        conns.push(vec![open(u, false).await, open(u, true).await]);
    }
    let msgs = app.ts.mongo().await.collection::<bson::Document>("messages");
    let conv = format!("g:{group}");
    let mut rng = Rng(0x5EED_9876_0000_0002);
    let mut carol_in = true;
    let mut last_seq = 1i64;
    let mut seen = [0i64; 3];
    for step in 0..150 {
        let u = rng.below(3) as usize;
        let kind = rng.below(12);
        if u == 2 && !carol_in && kind != 11 {
            continue;
        }
        let c = rng.below(2) as usize;
        let frame = |v: serde_json::Value, pinned: bool| {
            let mut v = v;
            if !pinned {
                v["group"] = json!(group);
            }
            v
        };
        let conn = &mut conns[u][c];
        match kind {
            0..=4 => {
                conn.ws.send_json(frame(json!({"type": 1, "content": format!("step {step}")}), conn.pinned)).await;
                let r = reply(&mut conn.ws, &[ReplyCode::Delivered, ReplyCode::StoredOffline]).await;
                last_seq = r.message.unwrap().seq;
            }
            5..=6 => {
                let seq = rng.below(last_seq as u64 + 3) as i64;
                conn.ws.send_json(frame(json!({"type": 5, "read_seq": seq}), conn.pinned)).await;
                let r = reply(&mut conn.ws, &[ReplyCode::ReadReceipt]).await;
                assert!(r.read_seq.unwrap() <= last_seq);
            }
            7..=8 => {
                conn.ws.send_json(frame(json!({"type": 3}), conn.pinned)).await;
                reply(&mut conn.ws, &[ReplyCode::Unread, ReplyCode::End]).await;
            }
            9 => {
                let fresh = open(users[u], conn.pinned).await;
                drop(std::mem::replace(conn, fresh));
            }
            _ => {
                // carol leaves or is added again (by alice, the owner): her view starts over
                let (status, _) = if carol_in {
                    app.call(Method::DELETE, &format!("/groups/{group}/members/{}", carol.id), None, &carol).await
                } else {
                    let body = json!({"user_ids": [carol.id]});
                    app.call(Method::POST, &format!("/groups/{group}/members"), Some(body), &alice).await
                };
                assert_eq!(status, 200, "step {step}");
                carol_in = !carol_in;
                last_seq += 1;
                seen[2] = 0;
                // back in: fresh sockets (her pinned one was refused while she was out)
                if carol_in {
                    for (k, slot) in conns[2].iter_mut().enumerate() {
                        let fresh = open(&carol, k == 1).await;
                        drop(std::mem::replace(slot, fresh));
                    }
                }
            }
        }
        let members = app.group_view(&alice, group).await["members"].as_array().cloned().unwrap();
        for (i, user) in users.iter().enumerate() {
            let Some(member) = members.iter().find(|m| m["id"] == user.id) else {
                assert!(listed_group(&app, user, group).await.is_none(), "step {step}: listed after leaving");
                continue;
            };
            let floor = member["join_seq"].as_i64().unwrap() - 1;
            let me = user.id as i64;
            let (unread, read_seq, expected) = poll_until(
                Duration::from_secs(5),
                || async {
                    let (unread, read_seq) = listed_group(&app, user, group).await.expect("a member lists the group");
                    let after = read_seq.max(floor);
                    let expected = msgs
                        .count_documents(doc! {"conv": &conv, "seq": {"$gt": after}, "from": {"$ne": me}})
                        .await
                        .unwrap();
                    (unread, read_seq, expected)
                },
                |(unread, _, expected)| unread == expected,
            )
            .await;
            assert_eq!(unread, expected, "step {step}: {}'s unread", user.user_name);
            assert!(read_seq >= seen[i] || i == 2, "step {step}: a position went back");
            assert!(read_seq <= last_seq, "step {step}: past the last seq");
            seen[i] = read_seq.max(seen[i]);
        }
    }
    assert!(last_seq > 40, "the run sent messages: {last_seq}");
}
