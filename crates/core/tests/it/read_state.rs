//! Read state from positions, property-style: a fixed-seed random run of sends, pushes, read
//! receipts, unread fetches and reconnects by two users on several connections each (device
//! connections and pinned ones). After every step the unread count of the conversation list
//! equals the `read: false` messages to that user in MongoDB, and positions only grow.

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
