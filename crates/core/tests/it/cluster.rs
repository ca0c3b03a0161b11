//! Several nodes as one service: nodes started on the same stores, each user on another node,
//! everything live across them through Redis pub/sub; pushes dropped between nodes on purpose
//! and recovered by catch-up; a node that cannot hear the others is not ready.

use std::time::Duration;

use chat_model::ReplyCode;
use reqwest::Method;
use serde_json::json;

use crate::{TestApp, Ws, spawn_with};

fn send(to: u64, text: &str) -> serde_json::Value {
    json!({"type": 1, "to": to, "content": text})
}

fn say(group: u64, text: &str) -> serde_json::Value {
    json!({"type": 1, "group": group, "content": text})
}

/// Nodes whose heartbeat is too slow to matter: what crosses within a test crossed by pub/sub.
async fn nodes(n: usize) -> Vec<TestApp> {
    let first = spawn_with(|s| {
        s.websocket.ping_interval_secs = 60;
        s.group.cache_ttl_secs = 3600;
    })
    .await;
    let mut all = vec![first];
    for _ in 1..n {
        let node = all[0].node().await;
        all.push(node);
    }
    all
}

impl Ws {
    /// The next pushed message (50001), skipping everything else.
    async fn pushed(&mut self) -> chat_model::ChatMessage {
        self.next_with(ReplyCode::Incoming).await.message.unwrap()
    }

    /// The next read receipt of `reader` (skipping the connection's own user's).
    async fn receipt_of(&mut self, reader: u64) -> chat_model::ServerFrame {
        loop {
            let f = self.next_with(ReplyCode::ReadReceipt).await;
            if f.user_id == Some(reader) {
                return f;
            }
        }
    }
}

#[tokio::test]
async fn a_direct_conversation_with_each_side_on_another_node_is_live() {
    let n = nodes(2).await;
    let (a, b) = (&n[0], &n[1]);
    let (alice, bob) = a.two_users().await;
    let mut alice_ws = a.device(&alice).await;
    assert_eq!(alice_ws.ask(send(bob.id, "are you there?")).await.code, ReplyCode::StoredOffline);

    // bob comes online on the other node: alice hears of it
    let mut bob_ws = b.device(&bob).await;
    let online = alice_ws.next_with(ReplyCode::Presence).await;
    assert_eq!((online.user_id, online.online), (Some(bob.id), Some(true)));
    let listed = b.conversations(&alice).await;
    assert_eq!(listed[0]["online"], json!(true), "{listed:?}");

    // a message crosses, and the sender is told it was delivered
    let reply = alice_ws.ask(send(bob.id, "hello from node a")).await;
    assert_eq!(reply.code, ReplyCode::Delivered, "{reply:?}");
    let got = bob_ws.pushed().await;
    assert_eq!((got.seq, got.content.as_str(), got.from), (2, "hello from node a", alice.id));
    // and back
    assert_eq!(bob_ws.ask(send(alice.id, "hi from node b")).await.code, ReplyCode::Delivered);
    assert_eq!(alice_ws.pushed().await.seq, 3);

    // typing and a read receipt cross too
    bob_ws.send_json(json!({"type": 6, "to": alice.id})).await;
    let typing = alice_ws.next_with(ReplyCode::Typing).await;
    assert_eq!(typing.user_id, Some(bob.id));
    assert_eq!(bob_ws.read_up_to(alice.id, 3).await.read_seq, Some(3));
    let receipt = alice_ws.receipt_of(bob.id).await;
    assert_eq!((receipt.user_id, receipt.read_seq), (Some(bob.id), Some(3)));

    // a logout through node a closes bob's socket on node b at once (not at a heartbeat)
    assert_eq!(a.post("/user/logout", json!({}), Some(&bob.token)).await.0, 200);
    assert_eq!(tokio::time::timeout(Duration::from_secs(3), bob_ws.closed_with()).await.unwrap(), 4001);
    let offline = alice_ws.next_with(ReplyCode::Presence).await;
    assert_eq!((offline.user_id, offline.online), (Some(bob.id), Some(false)));
}

#[tokio::test]
async fn a_group_spread_over_three_nodes_is_one_group() {
    let n = nodes(3).await;
    let users = [n[0].user("ann_0001").await, n[1].user("ben_0001").await, n[2].user("cid_0001").await];
    let id = n[0].group(&users[0], "spread", &[&users[1], &users[2]]).await;
    let mut conns = Vec::new();
    for (node, u) in n.iter().zip(&users) {
        conns.push(node.device(u).await);
    }
    for (i, text) in ["from a", "from b", "from c"].into_iter().enumerate() {
        let reply = conns[i].answer(say(id, text)).await;
        assert_eq!(reply.code, ReplyCode::Delivered, "{reply:?}");
        let seq = reply.message.unwrap().seq;
        for (j, ws) in conns.iter_mut().enumerate().filter(|(j, _)| *j != i) {
            let got = ws.pushed().await;
            assert_eq!((got.seq, got.content.as_str()), (seq, text), "member {j}");
        }
    }
    // removed through node a: node c's cache (an hour's ttl) learns of it at once
    let path = format!("/groups/{id}/members/{}", users[2].id);
    assert_eq!(n[0].call(Method::DELETE, &path, None, &users[0]).await.0, 200);
    let removed = conns[2].recv_until_system("removed").await;
    assert_eq!(removed.event.unwrap().users, [users[2].id as i64]);
    assert_eq!(conns[2].answer(say(id, "still here?")).await.code, ReplyCode::NotMember);
    assert_eq!(conns[1].answer(say(id, "bye cid")).await.code, ReplyCode::Delivered);
    assert_eq!(conns[0].recv_until_system("removed").await.seq, removed.seq);
    assert_eq!(conns[0].pushed().await.content, "bye cid");
    assert!(!conns[2].gets_within(ReplyCode::Incoming, Duration::from_millis(300)).await, "not to a former member");
}

#[tokio::test]
async fn pushes_lost_between_nodes_leave_messages_unread_and_are_caught_up() {
    let n = nodes(2).await;
    let (a, b) = (&n[0], &n[1]);
    let (alice, bob) = a.two_users().await;
    let mut alice_ws = a.device(&alice).await;
    let mut bob_ws = b.device(&bob).await;
    b.services.chat.drop_pushes_from_other_nodes(true);
    for text in ["lost 1", "lost 2"] {
        // node b heard them (and dropped them): pub/sub cannot tell
        assert_eq!(alice_ws.ask(send(bob.id, text)).await.code, ReplyCode::Delivered);
    }
    assert!(!bob_ws.gets_within(ReplyCode::Incoming, Duration::from_millis(300)).await);
    b.services.chat.drop_pushes_from_other_nodes(false);
    alice_ws.ask(send(bob.id, "arrives")).await;
    let got = bob_ws.pushed().await;
    assert_eq!(got.seq, 3, "bob held nothing and is pushed seq 3: 1 and 2 are missing");
    // what a client does on a gap: catch up from the last seq it holds
    let caught = bob_ws.ask(json!({"type": 4, "to": alice.id, "after_seq": 0})).await;
    assert_eq!(caught.code, ReplyCode::CatchUp);
    let seqs: Vec<i64> = caught.messages.unwrap().iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    // nothing was taken as read by the pushes that were lost (nor by those written)
    let listed = b.conversations(&bob).await;
    assert_eq!(listed[0]["unread"], json!(3), "{listed:?}");
    let unread = bob_ws.ask(json!({"type": 3, "to": alice.id})).await;
    assert_eq!(unread.messages.unwrap().len(), 3);
}

/// A Redis user of the test's own, whose pub/sub rights can be taken away (Redis then closes
/// its subscriptions and refuses new ones, while its other commands go on): a subscription
/// broken as by a failover, the rest of Redis fine. Deleted on drop.
struct RedisUser {
    name: String,
    admin: redis::Client,
}

impl RedisUser {
    async fn acl(&self, rules: &[&str]) {
        let mut c = self.admin.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("ACL").arg("SETUSER").arg(&self.name).arg(rules).query_async(&mut c).await.unwrap();
    }
}

impl Drop for RedisUser {
    fn drop(&mut self) {
        if let Ok(mut c) = self.admin.get_connection() {
            let _: Result<(), _> = redis::cmd("ACL").arg("DELUSER").arg(&self.name).query(&mut c);
        }
    }
}

#[tokio::test]
async fn a_node_that_cannot_hear_the_others_is_not_ready_until_it_hears_them_again() {
    let a = spawn_with(|s| s.websocket.ping_interval_secs = 60).await;
    let url = a.ts.settings.redis.url.clone();
    let user = RedisUser { name: a.ts.name().to_string(), admin: redis::Client::open(url.as_str()).unwrap() };
    user.acl(&["on", "nopass", "~*", "&*", "+@all"]).await;
    let b = a.node_with(|s| s.redis.url = url.replacen("redis://", &format!("redis://{}:x@", user.name), 1)).await;
    assert_eq!(b.get("/readyz").await.1["data"]["pubsub"], "ok");
    let (alice, bob) = a.two_users().await;
    let mut alice_ws = a.device(&alice).await;
    let mut bob_ws = b.device(&bob).await;

    user.acl(&["resetchannels"]).await;
    let status = || async { b.get("/readyz").await.0 };
    assert_eq!(chat_testkit::poll_until(Duration::from_secs(5), status, |s| *s == 503).await, 503);
    let body = b.get("/readyz").await.1;
    assert!(body["error"].as_str().unwrap_or_default().contains("pub/sub"), "{body}");
    // meanwhile a send to bob is stored and waits: node b did not hear it
    assert_eq!(alice_ws.ask(send(bob.id, "while b is deaf")).await.code, ReplyCode::StoredOffline);

    user.acl(&["allchannels"]).await;
    assert_eq!(chat_testkit::poll_until(Duration::from_secs(10), status, |s| *s == 200).await, 200);
    assert_eq!(alice_ws.ask(send(bob.id, "heard again")).await.code, ReplyCode::Delivered);
    let got = bob_ws.pushed().await;
    assert_eq!((got.seq, got.content.as_str()), (2, "heard again"));
}
