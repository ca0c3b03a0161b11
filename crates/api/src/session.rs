//! The session loop of one WebSocket connection: a device connection (`/ws`, every
//! conversation of its user; frames name theirs with `to` or `group`) or one pinned to a
//! conversation (`/ws?toUid=`, `/ws?groupId=`: the same loop with the conversation implied).
//!
//! Each text frame gets exactly one reply frame (an accepted typing frame none); bad input gets
//! an error frame and the connection stays open. Pushed frames are written as they come; on a
//! pinned socket a pushed message counts as read once written; an unread page on either. The
//! first frame naming a peer this connection has not seen waits for the check that the peer is
//! a user. A read (history, unread, catch-up) waits until the sends before it are
//! answered, without stopping the loop: meanwhile no further frame is read, while pushes,
//! pings and kicks go on. The server pings every
//! `ping_interval_secs` and closes a connection silent for `client_timeout_secs` (the node's
//! heartbeat, not this loop, refreshes presence and checks the session). At shutdown the
//! connection stops reading, writes the replies to the sends it has in flight, and closes
//! with 1001.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError, Session};
use chat_model::{Addressed, ReplyCode, ServerFrame, Target, frame::FrameError};
use chat_service::{Connection, Kick, Outbound};
use futures_util::{StreamExt as _, stream::FuturesOrdered};
use slog::{Logger, info};

use crate::{
    error::error_frame,
    frames::{self, Reply},
    state::AppState,
};

/// Sends a connection may have waiting for the store at once; more frames wait unread.
const MAX_IN_FLIGHT: usize = 64;

/// How a session loop ends.
enum End {
    /// The client closed, or the socket is gone.
    Client,
    Close(CloseCode, String),
    /// The server is shutting down: write the replies in flight, then close.
    Drain,
}

/// Close reasons must fit a control frame (123 bytes).
fn close_reason(code: CloseCode, text: &str) -> End {
    let mut end = text.len().min(120);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    End::Close(code, text[..end].to_string())
}

fn kicked(why: Kick) -> End {
    let (code, reason) = why.close();
    End::Close(CloseCode::Other(code), reason.into())
}

struct Live {
    state: Arc<AppState>,
    conn: Connection,
    ws: Session,
    replies: FuturesOrdered<Reply>,
    /// A read waiting for the replies before it.
    deferred: Option<Addressed>,
    /// Per conversation, the last seq of the unread pages written to this connection.
    unread_after: HashMap<Target, i64>,
    /// The peers known to be users.
    peers: HashSet<u64>,
    /// Per conversation, the seq of the last message pushed to this connection.
    pushed: HashMap<Arc<str>, i64>,
    /// Bounds every write: a client that stops reading must not stall its session forever.
    timeout: Duration,
    log: Logger,
}

pub(crate) async fn run(
    state: Arc<AppState>,
    conn: Connection,
    ws: Session,
    mut stream: AggregatedMessageStream,
    log: Logger,
) {
    info!(log, "connected");
    let settings = &state.settings.websocket;
    let timeout = Duration::from_secs(settings.client_timeout_secs.max(1));
    let mut ping = tokio::time::interval(Duration::from_secs(settings.ping_interval_secs.max(1)));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let mut live = Live {
        state: state.clone(),
        ws,
        replies: FuturesOrdered::new(),
        deferred: None,
        unread_after: HashMap::new(),
        peers: conn.pin.and_then(Target::peer).into_iter().collect(),
        pushed: HashMap::new(),
        conn,
        timeout,
        log,
    };
    let mut last_heard = Instant::now();

    let welcome = ServerFrame::connected(live.conn.user, live.conn.pin);
    let end = match live.write(welcome.to_json()).await {
        Err(end) => end,
        Ok(()) => loop {
            tokio::select! {
                changed = live.conn.kick.changed() => {
                    if let Some(end) = live.kicked(changed.is_ok()).await {
                        break end;
                    }
                }
                Some(frame) = live.conn.outbound.recv() => {
                    if let Err(end) = live.push(frame).await {
                        break end;
                    }
                }
                Some(reply) = live.replies.next(), if !live.replies.is_empty() => {
                    if let Err(end) = live.reply(reply).await {
                        break end;
                    }
                }
                msg = stream.next(), if live.replies.len() < MAX_IN_FLIGHT && live.deferred.is_none() => {
                    last_heard = Instant::now();
                    if let Err(end) = live.message(msg).await {
                        break end;
                    }
                }
                _ = tokio::time::sleep_until((last_heard + timeout).into()) => {
                    break End::Close(CloseCode::Away, "no frames or pongs within the timeout".into());
                }
                _ = ping.tick() => {
                    if let Err(end) = write(timeout, live.ws.ping(b"")).await {
                        break end;
                    }
                }
            }
        },
    };
    let end = match end {
        End::Drain => live.drain().await,
        other => other,
    };
    // the close frame first: a shutdown waits for the connection to unregister, then stops
    let Live { mut conn, ws, log, .. } = live;
    match end {
        End::Client | End::Drain => {
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
            info!(log, "disconnected");
        }
        End::Close(code, description) => {
            info!(log, "closing"; "code" => u16::from(code), "reason" => &description);
            let reason = CloseReason { code, description: Some(description) };
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(reason))).await;
        }
    }
    state.services.chat.disconnect(&mut conn).await;
}

/// A write with a deadline.
async fn write(deadline: Duration, op: impl Future<Output = Result<(), actix_ws::Closed>>) -> Result<(), End> {
    match tokio::time::timeout(deadline, op).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Client),
        Err(_) => Err(kicked(Kick::TooSlow)),
    }
}

impl Live {
    async fn write(&mut self, text: String) -> Result<(), End> {
        write(self.timeout, self.ws.text(text)).await
    }

    /// The server wants the connection closed; None when the signal carried nothing.
    async fn kicked(&mut self, changed: bool) -> Option<End> {
        let why = if changed { *self.conn.kick.borrow() } else { None };
        match why? {
            Kick::ShuttingDown => Some(End::Drain),
            Kick::SessionEnded => {
                let _ = self.write(ServerFrame::session_ended().to_json()).await;
                Some(kicked(Kick::SessionEnded))
            }
            why => Some(kicked(why)),
        }
    }

    /// A frame pushed to this connection (on a pinned socket, the message it hands over counts
    /// as read once written). A conversation's messages are written in increasing seq: one that
    /// comes after a later one (from another node) is left out, and the client, which saw the
    /// gap, catches up.
    async fn push(&mut self, frame: Outbound) -> Result<(), End> {
        if let Some((conv, seq)) = &frame.seq {
            match self.pushed.get_mut(conv) {
                Some(last) if *last >= *seq => {
                    self.state.services.metrics.node_event("late", 1);
                    return Ok(());
                }
                Some(last) => *last = *seq,
                None => {
                    self.pushed.insert(conv.clone(), *seq);
                }
            }
        }
        self.write(String::from(&*frame.text)).await?;
        self.state.services.chat.written(&self.conn, &frame);
        Ok(())
    }

    /// Writes a reply. An unread page is marked read once it is written (and stays unread if not).
    async fn reply(&mut self, reply: Option<ServerFrame>) -> Result<(), End> {
        if let Some(reply) = reply {
            self.write(reply.to_json()).await?;
            if reply.code == ReplyCode::Unread
                && let Some(messages) = &reply.messages
            {
                let user = self.conn.user;
                let target = messages.iter().next().map(|m| match (m.group_id, m.to) {
                    (Some(g), _) => Target::Group(g),
                    (None, Some(to)) if m.from == user => Target::User(to),
                    (None, _) => Target::User(m.from),
                });
                if let (Some(target), Some(last)) = (target, messages.iter().map(|m| m.seq).max()) {
                    self.state.services.chat.written_unread(user, target, messages);
                    let after = self.unread_after.entry(target).or_default();
                    *after = (*after).max(last);
                }
            }
        }
        // a read that waited for the replies before it goes ahead
        if self.replies.is_empty()
            && let Some(read) = self.deferred.take()
        {
            self.handle(Ok(read)).await;
        }
        Ok(())
    }

    /// Queues the reply to a frame. The first frame about a peer this connection has not seen
    /// waits here for the check that the peer is a user (later ones do not); a group's
    /// membership is checked by the service at each frame (it changes).
    async fn handle(&mut self, frame: Result<Addressed, FrameError>) {
        let reply = match frame {
            Err(e) => frames::refused(e),
            Ok(Addressed { to, frame }) => match frames::target_of(&self.conn, to) {
                Err(refused) => refused,
                Ok(target) => match self.check_peer(target).await {
                    Err(refused) => refused,
                    Ok(()) => {
                        let after = self.unread_after.get(&target).copied();
                        frames::handle(&self.state, &self.conn, target, frame, after, &self.log)
                    }
                },
            },
        };
        self.replies.push_back(reply);
    }

    async fn check_peer(&mut self, target: Target) -> Result<(), Reply> {
        let Target::User(peer) = target else {
            // a group's membership changes: asked at every frame (of the membership cache, which
            // this loads here rather than in a committer)
            let check = Box::pin(self.state.services.chat.check_target(self.conn.user, target));
            return check.await.map_err(|e| frames::ready(error_frame(&self.log, &e)));
        };
        if self.peers.contains(&peer) {
            return Ok(());
        }
        // boxed: the lookup's state would otherwise sit in every connection's task, idle or not
        match Box::pin(self.state.services.chat.check_peer(self.conn.user, peer)).await {
            Ok(()) => {
                self.peers.insert(peer);
                Ok(())
            }
            Err(e) => Err(frames::ready(error_frame(&self.log, &e))),
        }
    }

    /// A frame from the client.
    async fn message(&mut self, msg: Option<Result<AggregatedMessage, ProtocolError>>) -> Result<(), End> {
        match msg {
            None | Some(Ok(AggregatedMessage::Close(_))) => Err(End::Client),
            Some(Ok(AggregatedMessage::Text(text))) => {
                match Addressed::parse(&text) {
                    // a read (history, unread, catch-up) sees every send this connection made
                    // before it
                    Ok(read) if frames::is_read(&read) && !self.replies.is_empty() => {
                        self.deferred = Some(read);
                    }
                    frame => self.handle(frame).await,
                }
                Ok(())
            }
            Some(Ok(AggregatedMessage::Binary(_))) => {
                let refused =
                    ServerFrame::new(ReplyCode::BinaryNotSupported, "binary frames are not supported; send JSON text");
                self.replies.push_back(frames::ready(refused));
                Ok(())
            }
            Some(Ok(AggregatedMessage::Ping(bytes))) => write(self.timeout, self.ws.pong(&bytes)).await,
            Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
            Some(Err(ProtocolError::Overflow)) => {
                let max = self.state.settings.chat.max_frame_bytes;
                Err(close_reason(CloseCode::Size, &format!("frame over {max} bytes")))
            }
            // the socket is gone (e.g. closed without a close frame): nothing to tell it
            Some(Err(ProtocolError::Io(_))) => Err(End::Client),
            Some(Err(e)) => Err(close_reason(CloseCode::Protocol, &e.to_string())),
        }
    }

    /// Shutting down: nothing more is read; the replies to the sends in flight (the committers
    /// store and answer every queued send) and what is pushed meanwhile are written, within
    /// the shutdown timeout; then the connection closes with 1001.
    async fn drain(&mut self) -> End {
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(self.state.settings.server.shutdown_timeout_secs.max(1));
        while !self.replies.is_empty() {
            let step = tokio::select! {
                Some(reply) = self.replies.next() => self.reply(reply).await,
                Some(frame) = self.conn.outbound.recv() => self.push(frame).await,
                _ = tokio::time::sleep_until(deadline) => break,
            };
            if let Err(end) = step {
                return end;
            }
        }
        kicked(Kick::ShuttingDown)
    }
}
