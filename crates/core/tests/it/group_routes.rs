//! `/groups` end to end: every route, who may do what (403), what does not exist (404), what
//! is malformed (400), and the system message each change leaves in the timeline.

use chat_model::ReplyCode;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{TestApp, TestUser, Ws, spawn_app, spawn_with};

impl TestApp {
    /// Any request with a bearer token and an optional JSON body: the status and the envelope.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>, user: &TestUser) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&user.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
    }

    /// Creates a group of `owner` with `members`; its id.
    pub async fn group(&self, owner: &TestUser, name: &str, members: &[&TestUser]) -> u64 {
        let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
        let (status, body) =
            self.call(Method::POST, "/groups", Some(json!({"name": name, "members": ids})), owner).await;
        assert_eq!(status, 201, "{body}");
        body["data"]["id"].as_u64().unwrap()
    }

    /// The group as `user` sees it (200 expected).
    pub async fn group_view(&self, user: &TestUser, id: u64) -> Value {
        let (status, body) = self.call(Method::GET, &format!("/groups/{id}"), None, user).await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }
}

impl Ws {
    /// Sends a frame and returns its reply, skipping the pushes (50001) and events before it.
    pub async fn answer(&mut self, v: Value) -> chat_model::ServerFrame {
        self.send_json(v).await;
        loop {
            let f = self.recv().await;
            if f.code != ReplyCode::Incoming {
                return f;
            }
        }
    }

    /// The whole visible history of a group on a device connection, oldest first (page by
    /// page).
    pub async fn group_history(&mut self, group: u64) -> Vec<chat_model::ChatMessage> {
        let mut all = Vec::new();
        let mut before: Option<i64> = None;
        loop {
            let mut frame = json!({"type": 2, "group": group, "limit": 50});
            if let Some(b) = before {
                frame["before_seq"] = json!(b);
            }
            let page = self.answer(frame).await.messages.unwrap_or_default();
            let Some(oldest) = page.last().map(|m| m.seq) else { break };
            all.extend(page);
            before = Some(oldest);
        }
        all.reverse();
        all
    }

    /// The next pushed system message whose change is `action` (`"added"`, …), skipping others.
    pub async fn recv_until_system(&mut self, action: &str) -> chat_model::ChatMessage {
        loop {
            let f = self.recv().await;
            if let Some(m) = f.message
                && let Some(e) = &m.event
                && serde_json::to_value(e.action).unwrap() == action
            {
                return m;
            }
        }
    }
}

fn roles(view: &Value) -> Vec<(String, String)> {
    view["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["user_name"].as_str().unwrap().to_string(), m["role"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn creating_a_group_checks_its_name_and_members() {
    let app = spawn_with(|s| s.group.max_members = 3).await;
    let (alice, bob) = app.two_users().await;
    let carol = app.user("carol_01").await;
    let dave = app.user("dave_001").await;
    let post = |body: Value| app.call(Method::POST, "/groups", Some(body), &alice);
    for (body, why) in [
        (json!({"name": "   ", "members": [bob.id]}), "name"),
        (json!({"name": "x".repeat(31), "members": [bob.id]}), "name"),
        (json!({"name": "ok", "members": [999_999, 888_888]}), "[888888, 999999]"),
        (json!({"name": "ok", "members": [bob.id, carol.id, dave.id]}), "at most 3"),
        (json!({"name": "ok", "members": "bob"}), "expected a list of user ids"),
        (json!({"members": [bob.id]}), "missing field `name`"),
    ] {
        let (status, body) = post(body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["error"].as_str().unwrap_or_default().contains(why), "{why}: {body}");
    }
    assert_eq!(app.call(Method::GET, "/groups", None, &alice).await.1["data"], json!([]), "nothing was created");

    // 30 characters of any script are fine; the creator is the owner; duplicates count once
    let name = "Ünïcødé группа 旅行 ✈️ friends";
    assert!(name.chars().count() <= 30);
    let (status, body) = post(json!({"name": name, "members": [bob.id, bob.id, alice.id, carol.id]})).await;
    assert_eq!((status, body["status"].as_u64()), (201, Some(201)), "{body}");
    let g = &body["data"];
    assert_eq!(
        (g["name"].as_str(), g["owner"].as_u64(), g["member_count"].as_u64()),
        (Some(name), Some(alice.id), Some(3))
    );
    assert_eq!(
        roles(g),
        [("alice_01", "owner"), ("bob_0001", "member"), ("carol_01", "member")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert!(g["members"].as_array().unwrap().iter().all(|m| m["read_seq"] == 0 && m["join_seq"] == 1));
    let list = app.call(Method::GET, "/groups", None, &bob).await.1;
    assert_eq!(list["data"][0]["id"], g["id"]);
    assert_eq!(list["data"][0]["my_role"], "member");
    assert!(list["data"][0].get("members").is_none(), "the list has no member lists");
}

#[tokio::test]
async fn outsiders_get_403_and_unknown_groups_404_on_every_route() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let eve = app.user("eve_0001").await;
    let id = app.group(&alice, "team", &[&bob]).await;
    let routes = |id: u64| {
        vec![
            (Method::GET, format!("/groups/{id}"), None),
            (Method::PATCH, format!("/groups/{id}"), Some(json!({"name": "mine"}))),
            (Method::DELETE, format!("/groups/{id}"), None),
            (Method::POST, format!("/groups/{id}/members"), Some(json!({"user_ids": [eve.id]}))),
            (Method::DELETE, format!("/groups/{id}/members/{}", bob.id), None),
            (Method::PUT, format!("/groups/{id}/members/{}/role", bob.id), Some(json!({"role": "admin"}))),
            (Method::POST, format!("/groups/{id}/owner"), Some(json!({"user_id": eve.id}))),
        ]
    };
    for (method, path, body) in routes(id) {
        let (status, reply) = app.call(method.clone(), &path, body, &eve).await;
        assert_eq!(status, 403, "{method} {path}: {reply}");
    }
    for (method, path, body) in routes(id + 1000) {
        assert_eq!(app.call(method.clone(), &path, body, &alice).await.0, 404, "{method} {path}");
    }
    assert_eq!(app.call(Method::GET, "/groups/abc", None, &alice).await.0, 400);
    assert_eq!(app.get_auth("/groups", None).await.0, 401);
    // the socket too
    assert_eq!(app.try_ws(Some(&eve.token), &format!("groupId={id}")).await.err(), Some(403));
    assert_eq!(app.try_ws(Some(&alice.token), &format!("groupId={}", id + 1000)).await.err(), Some(404));
    assert_eq!(app.try_ws(Some(&alice.token), &format!("groupId={id}&toUid={}", bob.id)).await.err(), Some(400));
    assert_eq!(app.try_ws(Some(&alice.token), "groupId=x").await.err(), Some(400));
    let mut e = app.device(&eve).await;
    for frame in [
        json!({"type": 1, "group": id, "content": "let me in"}),
        json!({"type": 2, "group": id}),
        json!({"type": 3, "group": id}),
        json!({"type": 4, "group": id, "after_seq": 0}),
        json!({"type": 5, "group": id, "read_seq": 1}),
        json!({"type": 6, "group": id}),
    ] {
        assert_eq!(e.ask(frame.clone()).await.code, ReplyCode::NotMember, "{frame}");
    }
    assert_eq!(e.ask(json!({"type": 2, "group": id + 1000})).await.code, ReplyCode::InvalidFrame);
    let mut a = app.device(&alice).await;
    assert_eq!(a.group_history(id).await.len(), 1, "eve's send stored nothing: only the creation");
}

#[tokio::test]
async fn who_may_change_what_and_each_change_is_a_system_message() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let carol = app.user("carol_01").await;
    let dave = app.user("dave_001").await;
    let id = app.group(&alice, "team", &[&bob, &carol]).await;
    let g = |path: &str| format!("/groups/{id}{path}");
    let mut b = app.device(&bob).await;

    // a member changes nothing
    assert_eq!(app.call(Method::PATCH, &g(""), Some(json!({"name": "bob's"})), &bob).await.0, 403);
    assert_eq!(app.call(Method::POST, &g("/members"), Some(json!({"user_ids": [dave.id]})), &bob).await.0, 403);
    assert_eq!(app.call(Method::DELETE, &g(&format!("/members/{}", carol.id)), None, &bob).await.0, 403);
    // the owner makes bob an admin; only the owner may
    let role = |u: &TestUser| g(&format!("/members/{}/role", u.id));
    assert_eq!(app.call(Method::PUT, &role(&carol), Some(json!({"role": "admin"})), &bob).await.0, 403);
    assert_eq!(app.call(Method::PUT, &role(&bob), Some(json!({"role": "owner"})), &alice).await.0, 400);
    assert_eq!(app.call(Method::PUT, &role(&bob), Some(json!({"role": "king"})), &alice).await.0, 400);
    assert_eq!(app.call(Method::PUT, &role(&bob), Some(json!({"role": "admin"})), &alice).await.0, 200);
    // an admin renames, adds, removes a member, but neither the owner nor another admin
    assert_eq!(app.call(Method::PATCH, &g(""), Some(json!({"name": "  "})), &bob).await.0, 400);
    assert_eq!(app.call(Method::PATCH, &g(""), Some(json!({"name": "the team"})), &bob).await.0, 200);
    assert_eq!(app.call(Method::POST, &g("/members"), Some(json!({"user_ids": [dave.id, 77_777]})), &bob).await.0, 400);
    assert_eq!(app.call(Method::POST, &g("/members"), Some(json!({"user_ids": [dave.id]})), &bob).await.0, 200);
    assert_eq!(app.call(Method::DELETE, &g(&format!("/members/{}", alice.id)), None, &bob).await.0, 403);
    assert_eq!(app.call(Method::PUT, &role(&dave), Some(json!({"role": "admin"})), &alice).await.0, 200);
    assert_eq!(app.call(Method::DELETE, &g(&format!("/members/{}", dave.id)), None, &bob).await.0, 403);
    assert_eq!(app.call(Method::DELETE, &g(&format!("/members/{}", carol.id)), None, &bob).await.0, 200);
    assert_eq!(app.call(Method::DELETE, &g(&format!("/members/{}", carol.id)), None, &bob).await.0, 400, "gone");
    // only the owner hands over (to a member) and dissolves
    assert_eq!(app.call(Method::POST, &g("/owner"), Some(json!({"user_id": bob.id})), &bob).await.0, 403);
    assert_eq!(app.call(Method::POST, &g("/owner"), Some(json!({"user_id": carol.id})), &alice).await.0, 400);
    assert_eq!(app.call(Method::DELETE, &g(""), None, &bob).await.0, 403);
    let (status, body) = app.call(Method::POST, &g("/owner"), Some(json!({"user_id": dave.id})), &alice).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["owner"], dave.id);
    let view = app.group_view(&alice, id).await;
    assert_eq!(view["name"], "the team");
    assert_eq!(
        roles(&view),
        [("alice_01", "admin"), ("bob_0001", "admin"), ("dave_001", "owner")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );

    // the timeline records each change: what, who did it, to whom
    let history = b.group_history(id).await;
    let events: Vec<(String, u64, Vec<i64>)> = history
        .iter()
        .map(|m| {
            assert_eq!(m.kind, Some(chat_model::MessageKind::System));
            assert_eq!((m.group_id, m.to), (Some(id), None));
            let e = m.event.as_ref().unwrap();
            (serde_json::to_value(e.action).unwrap().as_str().unwrap().to_string(), m.from, e.users.clone())
        })
        .collect();
    let (a, bo, c, d) = (alice.id, bob.id, carol.id as i64, dave.id as i64);
    assert_eq!(
        events,
        vec![
            ("created".into(), a, vec![bo as i64, c]),
            ("role_changed".into(), a, vec![bo as i64]),
            ("renamed".into(), bo, vec![]),
            ("added".into(), bo, vec![d]),
            ("role_changed".into(), a, vec![d]),
            ("removed".into(), bo, vec![c]),
            ("owner_changed".into(), a, vec![d]),
        ]
    );
    assert_eq!(history.iter().map(|m| m.seq).collect::<Vec<_>>(), (1..=7).collect::<Vec<_>>(), "gap-free");
    assert_eq!(history[0].content, "alice_01 created the group \"team\" with bob_0001, carol_01");
    assert_eq!(history[5].content, "bob_0001 removed carol_01");
    assert_eq!(history[2].content, "bob_0001 renamed the group to \"the team\"");

    // the owner dissolves it: the members hear of it, then it is gone
    assert_eq!(app.call(Method::DELETE, &g(""), None, &dave).await.0, 200);
    let last = b.recv_until_system("dissolved").await;
    assert_eq!(last.from, dave.id);
    assert_eq!(app.call(Method::GET, &g(""), None, &alice).await.0, 404);
    assert_eq!(app.call(Method::GET, "/groups", None, &bob).await.1["data"], json!([]));
}

#[tokio::test]
async fn an_owner_who_leaves_hands_over_and_the_last_member_dissolves() {
    let app = spawn_app().await;
    let (alice, bob) = app.two_users().await;
    let carol = app.user("carol_01").await;
    let id = app.group(&alice, "trio", &[&bob, &carol]).await;
    let app = &app;
    let leave = |u: TestUser| async move {
        let path = format!("/groups/{id}/members/{}", u.id);
        app.call(Method::DELETE, &path, None, &u).await
    };
    // no admin: the longest-standing member (bob, added before carol at creation) inherits
    app.call(Method::PUT, &format!("/groups/{id}/members/{}/role", carol.id), Some(json!({"role": "admin"})), &alice)
        .await;
    let (status, body) = leave(alice.clone()).await;
    assert_eq!((status, &body["data"]), (200, &Value::Null), "{body}");
    let view = app.group_view(&bob, id).await;
    assert_eq!(view["owner"], carol.id, "an admin first");
    assert_eq!(app.call(Method::GET, &format!("/groups/{id}"), None, &alice).await.0, 403, "alice left");
    assert_eq!(leave(carol.clone()).await.0, 200);
    assert_eq!(app.group_view(&bob, id).await["owner"], bob.id, "then the longest-standing member");
    let mut b = app.device(&bob).await;
    let kinds: Vec<String> = b
        .group_history(id)
        .await
        .iter()
        .map(|m| serde_json::to_value(m.event.as_ref().unwrap().action).unwrap().as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["created", "role_changed", "left", "owner_changed", "left", "owner_changed"]);
    assert_eq!(leave(bob.clone()).await.0, 200);
    assert_eq!(app.call(Method::GET, &format!("/groups/{id}"), None, &bob).await.0, 404, "the last one dissolved it");
}
