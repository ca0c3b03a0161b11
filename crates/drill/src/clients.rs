//! Clients like real ones: each user keeps a connection to its peer (or its group), sends at a steady rate
//! with a client_msg_id, catches up on unread after every (re)connect, reconnects with back-off
//! when the connection drops, logs in again when refused, and resends every unanswered send
//! with the same client_msg_id until it is acknowledged. Everything they see goes to a ledger.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chat_model::{ChatMessage, ReplyCode, ServerFrame, Target};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest as _};

use crate::procs::DrillResult;

/// The first acknowledgement of a send.
#[derive(Debug, Clone)]
pub struct Ack {
    pub id: String,
    pub seq: i64,
    pub code: u32,
    pub at: Instant,
    /// Who must receive it: the peer, or the group's other members.
    pub audience: Vec<u64>,
}

/// What the clients saw.
#[derive(Default)]
pub struct Ledger {
    pub acks: HashMap<String, Ack>,
    /// A later acknowledgement of the same send named another message.
    pub inconsistent: u64,
    /// Sends answered "not stored" (and sent again), with their code.
    pub refusals: Vec<(Instant, u32)>,
    /// The ids of the messages each user received (pushed or in an unread list).
    pub received: HashMap<u64, HashSet<String>>,
    /// Logins after the first (a client found its session gone), when they happened.
    pub relogins: Vec<Instant>,
    /// Sends refused by the no-reply limit.
    pub limited: u64,
    /// Unanswered sends per user.
    pub outstanding: HashMap<u64, usize>,
    /// Frames no client expects.
    pub unexpected: Vec<String>,
}

pub type SharedLedger = Arc<Mutex<Ledger>>;

pub fn lock(l: &SharedLedger) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the drill asks of the clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// No new sends; unanswered ones are still sent again.
    Draining,
    /// Fetch the unread messages once more, then stop.
    Final,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: u64,
    pub name: String,
}

/// Registers (or finds registered) and logs in; the account and its token.
pub async fn login(http: &reqwest::Client, base: &str, name: &str) -> DrillResult<(Account, String)> {
    let password = format!("{name}-drill-pw");
    let _ = http
        .post(format!("{base}/user/register"))
        .json(&json!({"nick_name": "drill", "user_name": name, "password": password}))
        .send()
        .await;
    let res =
        http.post(format!("{base}/user/login")).json(&json!({"user_name": name, "password": password})).send().await?;
    let status = res.status();
    let v: Value = res.json().await?;
    if !status.is_success() {
        return Err(format!("login {name}: {status} {v}").into());
    }
    let id = v["data"]["user"]["id"].as_u64().ok_or("login: no user id")?;
    let token = v["data"]["token"].as_str().ok_or("login: no token")?.to_string();
    Ok((Account { id, name: name.to_string() }, token))
}

pub struct Client {
    pub me: Account,
    pub token: String,
    /// The peer, or the group.
    pub target: Target,
    /// Who must receive what this client sends.
    pub audience: Vec<u64>,
    /// On a device connection (`/ws`, frames name the peer or group) instead of `/ws?toUid=`
    /// (`?groupId=`).
    pub device: bool,
    /// The pair's first speaker: it sends one message (a greeting) and waits for the other's
    /// answer, so the conversation is answered before it gets busy (a group has no no-reply
    /// limit: every member starts at once).
    pub opens: bool,
    pub rate: f64,
    /// The nodes' ports: the client connects to its own, and moves on to the next when that
    /// one does not answer (a node killed).
    pub ports: std::sync::Arc<[u16]>,
    pub node: usize,
    pub http: reqwest::Client,
    pub ledger: SharedLedger,
    pub phase: watch::Receiver<Phase>,
}

struct State {
    outstanding: BTreeMap<u64, String>,
    retry_at: BTreeMap<u64, Instant>,
    next: u64,
    greeted: bool,
}

type Stream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Client {
    pub async fn run(mut self) {
        let greeted = matches!(self.target, Target::Group(_));
        let mut st = State { outstanding: BTreeMap::new(), retry_at: BTreeMap::new(), next: 0, greeted };
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.connect().await {
                Ok(ws) => {
                    backoff = Duration::from_millis(100);
                    if self.session(ws, &mut st).await {
                        return;
                    }
                }
                Err(Refused::Unauthorized) => {
                    if let Ok((_, token)) = login(&self.http, &self.base(), &self.me.name).await {
                        self.token = token;
                        lock(&self.ledger).relogins.push(Instant::now());
                    }
                }
                Err(Refused::Other) => self.node = (self.node + 1) % self.ports.len(),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    fn port(&self) -> u16 {
        self.ports[self.node % self.ports.len()]
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    async fn connect(&self) -> Result<Stream, Refused> {
        let port = self.port();
        let url = match (self.device, self.target) {
            (true, _) => format!("ws://127.0.0.1:{port}/ws"),
            (false, Target::User(peer)) => format!("ws://127.0.0.1:{port}/ws?toUid={peer}"),
            (false, Target::Group(g)) => format!("ws://127.0.0.1:{port}/ws?groupId={g}"),
        };
        let mut req = url.into_client_request().map_err(|_| Refused::Other)?;
        let auth = format!("Bearer {}", self.token).parse().map_err(|_| Refused::Other)?;
        req.headers_mut().insert("Authorization", auth);
        match tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(req)).await {
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(tungstenite::Error::Http(res))) if res.status().as_u16() == 401 => Err(Refused::Unauthorized),
            _ => Err(Refused::Other),
        }
    }

    /// One connection's life; true when the client is done.
    async fn session(&mut self, ws: Stream, st: &mut State) -> bool {
        let (mut sink, mut stream) = ws.split();
        // the welcome, then catch up and send again what was not answered
        match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if parse(&t).is_some_and(|f| f.code == ReplyCode::Connected) => {}
            _ => return false,
        }
        let mut out = vec![self.unread_frame()];
        out.extend(st.outstanding.values().map(|c| self.send_frame(c)));
        for f in out {
            if sink.send(Message::text(f)).await.is_err() {
                return false;
            }
        }
        let mut final_asked = false;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / self.rate.max(0.1)));
        loop {
            let phase = *self.phase.borrow();
            if phase == Phase::Final && !final_asked && st.outstanding.is_empty() {
                final_asked = true;
                if sink.send(Message::text(self.unread_frame())).await.is_err() {
                    return false;
                }
            }
            tokio::select! {
                _ = tick.tick() => {
                    let mut frames = Vec::new();
                    if phase == Phase::Running && (st.greeted || (self.opens && st.next == 0)) {
                        st.next += 1;
                        let cmid = format!("{}-{}", self.me.id, st.next);
                        frames.push(self.send_frame(&cmid));
                        st.outstanding.insert(st.next, cmid);
                    }
                    let now = Instant::now();
                    let due: Vec<u64> = st.retry_at.iter().filter(|(_, t)| **t <= now).map(|(n, _)| *n).collect();
                    for n in due {
                        st.retry_at.remove(&n);
                        if let Some(cmid) = st.outstanding.get(&n) {
                            frames.push(self.send_frame(cmid));
                        }
                    }
                    lock(&self.ledger).outstanding.insert(self.me.id, st.outstanding.len());
                    for f in frames {
                        if sink.send(Message::text(f)).await.is_err() {
                            return false;
                        }
                    }
                }
                msg = stream.next() => {
                    let Some(Ok(msg)) = msg else { return false };
                    match msg {
                        Message::Text(t) => {
                            let Some(frame) = parse(&t) else { continue };
                            match self.frame(frame, st) {
                                Some(Next::AskUnread)
                                    if sink.send(Message::text(self.unread_frame())).await.is_err() =>
                                {
                                    return false;
                                }
                                Some(Next::Done) if final_asked => return true,
                                Some(Next::Reconnect) => return false,
                                _ => {}
                            }
                        }
                        Message::Close(_) => return false,
                        _ => {}
                    }
                }
                _ = self.phase.changed() => {}
            }
        }
    }

    fn frame(&mut self, f: ServerFrame, st: &mut State) -> Option<Next> {
        let mut ledger = lock(&self.ledger);
        match f.code {
            ReplyCode::Incoming => {
                if let Some(m) = f.message
                    && self.is_for_me(&m)
                {
                    ledger.received.entry(self.me.id).or_default().insert(m.id);
                    st.greeted = true;
                }
                None
            }
            ReplyCode::Delivered | ReplyCode::StoredOffline => {
                let m = f.message?;
                let cmid = m.client_msg_id.clone()?;
                st.outstanding.retain(|_, c| *c != cmid);
                let ack = Ack {
                    id: m.id.clone(),
                    seq: m.seq,
                    code: f.code.as_u32(),
                    at: Instant::now(),
                    audience: self.audience.clone(),
                };
                match ledger.acks.get(&cmid) {
                    Some(first) if first.id != ack.id || first.seq != ack.seq => ledger.inconsistent += 1,
                    Some(_) => {}
                    None => {
                        ledger.acks.insert(cmid, ack);
                    }
                }
                None
            }
            ReplyCode::Unread => {
                let received = ledger.received.entry(self.me.id).or_default();
                for m in f.messages.unwrap_or_default() {
                    if self.is_for_me(&m) {
                        received.insert(m.id);
                        st.greeted = true;
                    }
                }
                if f.more == Some(true) { Some(Next::AskUnread) } else { Some(Next::Done) }
            }
            ReplyCode::End => Some(Next::Done),
            // events: what was read, typed, who came online
            ReplyCode::ReadReceipt | ReplyCode::Typing | ReplyCode::Presence => None,
            ReplyCode::SessionEnded => Some(Next::Reconnect),
            ReplyCode::NoReplyLimit
            | ReplyCode::StoreUnavailable
            | ReplyCode::Internal
            | ReplyCode::Busy
            | ReplyCode::RateLimited
            | ReplyCode::ShuttingDown => {
                if f.code == ReplyCode::NoReplyLimit {
                    ledger.limited += 1;
                }
                ledger.refusals.push((Instant::now(), f.code.as_u32()));
                let wait = Duration::from_millis(f.retry_after_ms.unwrap_or(300).max(300));
                if let Some(cmid) = f.client_msg_id
                    && let Some((&n, _)) = st.outstanding.iter().find(|(_, c)| **c == cmid)
                {
                    st.retry_at.insert(n, Instant::now() + wait);
                }
                None
            }
            other => {
                ledger.unexpected.push(format!("{other:?}: {}", f.content));
                None
            }
        }
    }
}

enum Refused {
    Unauthorized,
    Other,
}

enum Next {
    AskUnread,
    Done,
    Reconnect,
}

impl Client {
    /// A message this client must receive: to it from its peer, or another member's in its
    /// group (the group's own system messages are nobody's send).
    fn is_for_me(&self, m: &ChatMessage) -> bool {
        match self.target {
            Target::User(_) => m.to == Some(self.me.id),
            Target::Group(g) => m.group_id == Some(g) && m.from != self.me.id && m.kind.is_none(),
        }
    }

    /// A frame about the conversation (it names it on a device connection).
    fn about(&self, mut frame: Value) -> String {
        match self.target {
            Target::User(peer) => frame["to"] = json!(peer),
            Target::Group(g) if self.device => frame["group"] = json!(g),
            Target::Group(_) => {}
        }
        frame.to_string()
    }

    fn unread_frame(&self) -> String {
        self.about(json!({"type": 3}))
    }

    fn send_frame(&self, cmid: &str) -> String {
        // the content names the send: a duplicate in the store is a message stored twice
        self.about(json!({"type": 1, "content": cmid, "client_msg_id": cmid}))
    }
}

fn parse(text: &str) -> Option<ServerFrame> {
    serde_json::from_str(text).ok()
}
