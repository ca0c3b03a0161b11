//! End to end: the real server (built by the same start-up code as the binary, on port 0)
//! against the real stores, spoken to over HTTP and WebSocket like any client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod cluster;
mod device;
mod group_chat;
mod group_routes;
mod http;
mod lifecycle;
mod read_state;
mod ws;

use std::time::Duration;

use chat_core::{Application, Stopper};
use chat_model::{ServerFrame, Settings};
use chat_service::ServiceGroup;
use chat_testkit::{TestStores, test_logger};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message, client::IntoClientRequest as _, protocol::CloseFrame},
};

pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub http: reqwest::Client,
    pub services: ServiceGroup,
    pub stopper: Stopper,
    /// Shared by the nodes of one test (see [`TestApp::node`]).
    pub ts: std::sync::Arc<TestStores>,
}

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: u64,
    pub user_name: String,
    pub token: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut ts = TestStores::new();
    tweak(&mut ts.settings);
    let settings = ts.settings.clone();
    start(std::sync::Arc::new(ts), settings).await
}

async fn start(ts: std::sync::Arc<TestStores>, settings: Settings) -> TestApp {
    let app = Application::build(settings, test_logger()).await.expect("server builds");
    let port = app.port();
    let stopper = app.handle();
    let services = app.state().services.clone();
    tokio::spawn(app.run_until_stopped());
    // a node serves once it hears the others (what `/readyz` waits for too), if Redis answers
    let hears = || async { services.chat.hears_other_nodes() };
    chat_testkit::poll_until(Duration::from_secs(3), hears, |h| *h).await;
    TestApp { base: format!("http://127.0.0.1:{port}"), port, http: reqwest::Client::new(), services, stopper, ts }
}

impl TestApp {
    /// Another node (process) of the same service: the same stores and settings, a port and a
    /// node id of its own.
    pub async fn node(&self) -> TestApp {
        self.node_with(|_| {}).await
    }

    /// Another node, with settings of its own on top of the shared ones.
    pub async fn node_with(&self, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = self.ts.settings.clone();
        tweak(&mut settings);
        start(self.ts.clone(), settings).await
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    pub async fn user(&self, user_name: &str) -> TestUser {
        let password = format!("{user_name}-password");
        let (status, body) = self
            .post("/user/register", json!({"nick_name": "Nick", "user_name": user_name, "password": password}), None)
            .await;
        assert_eq!(status, 200, "{body}");
        let id = body["data"]["id"].as_u64().unwrap();
        let (status, body) =
            self.post("/user/login", json!({"user_name": user_name, "password": password}), None).await;
        assert_eq!(status, 200, "{body}");
        TestUser { id, user_name: user_name.into(), token: body["data"]["token"].as_str().unwrap().into() }
    }

    /// Alice and Bob, registered and logged in.
    pub async fn two_users(&self) -> (TestUser, TestUser) {
        (self.user("alice_01").await, self.user("bob_0001").await)
    }

    /// Opens `/ws?toUid=peer` with the token in the header; the HTTP status on refusal.
    pub async fn try_ws(&self, token: Option<&str>, query: &str) -> Result<Ws, u16> {
        self.try_ws_from(token, query, None).await
    }

    /// As [`Self::try_ws`], from a page of `origin` (the `Origin` header a browser sends).
    pub async fn try_ws_from(&self, token: Option<&str>, query: &str, origin: Option<&str>) -> Result<Ws, u16> {
        let mut req = format!("ws://127.0.0.1:{}/ws?{query}", self.port).into_client_request().unwrap();
        if let Some(t) = token {
            req.headers_mut().insert("Authorization", format!("Bearer {t}").parse().unwrap());
        }
        if let Some(o) = origin {
            req.headers_mut().insert("Origin", o.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((stream, _)) => Ok(Ws { stream }),
            Err(tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
            Err(e) => panic!("websocket connect: {e}"),
        }
    }

    /// Opens a conversation and reads the welcome frame.
    pub async fn ws(&self, user: &TestUser, peer: &TestUser) -> Ws {
        let mut ws = self.try_ws(Some(&user.token), &format!("toUid={}", peer.id)).await.expect("upgrade");
        let hello = ws.recv().await;
        assert_eq!(hello.code.as_u32(), 50002, "{hello:?}");
        assert_eq!(hello.user_id, Some(user.id));
        ws
    }
}

pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

const WAIT: Duration = Duration::from_secs(10);

impl Ws {
    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.unwrap();
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    /// The next text frame that is not an event (a read receipt, typing, presence), parsed;
    /// panics on a close or after 10 s.
    pub async fn recv(&mut self) -> ServerFrame {
        loop {
            let f = self.next_frame().await;
            if !matches!(f.code.as_u32(), 50010..=50012) {
                return f;
            }
        }
    }

    /// The next text frame, whatever it is, parsed; panics on a close or after 10 s.
    pub async fn next_frame(&mut self) -> ServerFrame {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next()).await.expect("a frame in time");
            match msg.expect("connection open").expect("frame") {
                Message::Text(t) => return serde_json::from_str(&t).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Sends a frame and returns the reply.
    pub async fn ask(&mut self, v: Value) -> ServerFrame {
        self.send_json(v).await;
        self.recv().await
    }

    /// Reads until the server closes; the close code (skipping any text frames before it).
    pub async fn closed_with(&mut self) -> u16 {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next()).await.expect("a close in time");
            match msg {
                Some(Ok(Message::Close(Some(CloseFrame { code, .. })))) => return u16::from(code),
                Some(Ok(Message::Close(None))) | None => return 1005,
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("expected a close frame, got error {e}"),
            }
        }
    }
}
