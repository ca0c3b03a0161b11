//! `GET /ws?toUid=<peer id>`: the authenticated WebSocket of one conversation.
//!
//! Before the upgrade: no or bad token → 401; a peer that is not a user → 404. After it, each
//! text frame gets exactly one reply frame; bad input gets an error frame and the connection
//! stays open. The server pings every `ping_interval_secs` and closes a connection silent for
//! `client_timeout_secs`; at each ping it refreshes presence and checks the session still lives.

use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError, Session};
use chat_model::{ClientFrame, ReplyCode, ServerFrame, frame::FrameError};
use chat_service::{Connection, Kick, ServiceError};
use futures_util::{StreamExt as _, stream::FuturesOrdered};
use serde::Deserialize;
use slog::{Logger, info, o, warn};

use crate::{
    auth::{authenticate, bearer},
    error::{ApiError, error_frame},
    state::AppState,
};

#[derive(Debug, Clone, Copy, Default)]
pub struct ChatApi;

/// The query of `/ws`. `toUid` as in the original; the token only for browsers.
#[derive(Deserialize)]
pub struct WsQuery {
    #[serde(rename = "toUid")]
    pub to_uid: Option<String>,
    pub token: Option<String>,
}

impl ChatApi {
    /// `GET /ws?toUid=<peer id>` with `Authorization: Bearer <token>` or `&token=<token>`.
    pub async fn ws(
        req: HttpRequest,
        body: web::Payload,
        query: web::Query<WsQuery>,
        state: web::Data<AppState>,
    ) -> Result<HttpResponse, ApiError> {
        let query = query.into_inner();
        let user = authenticate(&state, bearer(&req).map(str::to_string).or(query.token)).await?;
        let peer: u64 = query
            .to_uid
            .as_deref()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| ApiError::BadRequest("toUid must be the peer's user id".into()))?;
        // the handshake has no effects until its response goes out, so it is checked first
        let (response, session, stream) =
            actix_ws::handle(&req, body).map_err(|e| ApiError::Handshake(e.to_string()))?;
        let conn = state.services.chat.connect(user.id, peer, user.session.clone()).await?;
        let max = state.settings.chat.max_frame_bytes;
        let stream = stream.max_frame_size(max).aggregate_continuations().max_continuation_size(max);
        let log = state.log.new(o!("conn_id" => conn.conn_id, "user_id" => conn.user, "peer_id" => conn.peer));
        actix_web::rt::spawn(run_session(state.into_inner(), conn, session, stream, log));
        Ok(response)
    }
}

/// How a session loop ends.
enum End {
    /// The client closed, or the socket is gone.
    Client,
    Close(CloseCode, String),
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

/// A write with a deadline: a client that stops reading must not stall its session forever.
async fn write(deadline: Duration, op: impl Future<Output = Result<(), actix_ws::Closed>>) -> Result<(), End> {
    match tokio::time::timeout(deadline, op).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Client),
        Err(_) => Err(kicked(Kick::TooSlow)),
    }
}

/// Writes a reply. An unread list that could not be written puts its messages back to unread:
/// they were marked read for this connection, which never showed them.
async fn write_reply(
    state: &AppState,
    conn: &Connection,
    session: &mut Session,
    timeout: Duration,
    reply: ServerFrame,
) -> Result<(), End> {
    let written = write(timeout, session.text(reply.to_json())).await;
    if written.is_err()
        && reply.code == ReplyCode::Unread
        && let Some(messages) = &reply.messages
    {
        state.services.chat.restore_unread(conn.user, messages).await;
    }
    written
}

async fn run_session(
    state: std::sync::Arc<AppState>,
    mut conn: Connection,
    mut session: Session,
    mut stream: AggregatedMessageStream,
    log: Logger,
) {
    info!(log, "connected");
    let ws = &state.settings.websocket;
    let timeout = Duration::from_secs(ws.client_timeout_secs.max(1));
    let mut ping = tokio::time::interval(Duration::from_secs(ws.ping_interval_secs.max(1)));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let mut last_heard = Instant::now();
    let mut unwritten = None;
    let mut replies: FuturesOrdered<Reply> = FuturesOrdered::new();

    let end = match write(timeout, session.text(ServerFrame::connected(conn.user, conn.peer).to_json())).await {
        Err(end) => end,
        Ok(()) => loop {
            tokio::select! {
                changed = conn.kick.changed() => {
                    let why = if changed.is_ok() { *conn.kick.borrow() } else { None };
                    let Some(why) = why else { continue };
                    if why == Kick::SessionEnded {
                        let _ = write(timeout, session.text(ServerFrame::session_ended().to_json())).await;
                    }
                    break kicked(why);
                }
                Some(frame) = conn.outbound.recv() => {
                    if let Err(end) = write(timeout, session.text(String::from(&*frame.text))).await {
                        unwritten = Some(frame);
                        break end;
                    }
                }
                Some(reply) = replies.next(), if !replies.is_empty() => {
                    if let Err(end) = write_reply(&state, &conn, &mut session, timeout, reply).await {
                        break end;
                    }
                }
                msg = stream.next(), if replies.len() < MAX_IN_FLIGHT => {
                    last_heard = Instant::now();
                    let written = match msg {
                        None | Some(Ok(AggregatedMessage::Close(_))) => break End::Client,
                        Some(Ok(AggregatedMessage::Text(text))) => {
                            // a read (history, unread) sees every send this connection made before it
                            let frame = ClientFrame::parse(&text);
                            let mut written = Ok(());
                            if matches!(frame, Ok(ClientFrame::History { .. } | ClientFrame::Unread)) {
                                while let Some(reply) = replies.next().await {
                                    written = write_reply(&state, &conn, &mut session, timeout, reply).await;
                                    if written.is_err() {
                                        break;
                                    }
                                }
                            }
                            if written.is_ok() {
                                replies.push_back(handle_frame(&state, &conn, frame, &log));
                            }
                            written
                        }
                        Some(Ok(AggregatedMessage::Binary(_))) => {
                            replies.push_back(ready(ServerFrame::new(ReplyCode::BinaryNotSupported, "binary frames are not supported; send JSON text")));
                            Ok(())
                        }
                        Some(Ok(AggregatedMessage::Ping(bytes))) => {
                            write(timeout, session.pong(&bytes)).await
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
                        Some(Err(ProtocolError::Overflow)) => {
                            break close_reason(CloseCode::Size, &format!("frame over {} bytes", state.settings.chat.max_frame_bytes));
                        }
                        // the socket is gone (e.g. closed without a close frame): nothing to tell it
                        Some(Err(ProtocolError::Io(_))) => break End::Client,
                        Some(Err(e)) => break close_reason(CloseCode::Protocol, &e.to_string()),
                    };
                    if let Err(end) = written {
                        break end;
                    }
                }
                _ = tokio::time::sleep_until((last_heard + timeout).into()) => {
                    break End::Close(CloseCode::Away, "no frames or pongs within the timeout".into());
                }
                _ = ping.tick() => {
                    if let Err(end) = write(timeout, session.ping(b"")).await {
                        break end;
                    }
                    match state.services.chat.heartbeat(&conn).await {
                        Ok(true) => {}
                        Ok(false) => {
                            let _ = write(timeout, session.text(ServerFrame::session_ended().to_json())).await;
                            break kicked(Kick::SessionEnded);
                        }
                        // a store hiccup does not drop the user; the next ping tries again
                        Err(e) => warn!(log, "heartbeat failed"; "error" => %e),
                    }
                }
            }
        },
    };
    state.services.chat.disconnect(&mut conn, unwritten).await;
    match end {
        End::Client => {
            let _ = tokio::time::timeout(Duration::from_secs(1), session.close(None)).await;
            info!(log, "disconnected");
        }
        End::Close(code, description) => {
            info!(log, "closing"; "code" => u16::from(code), "reason" => &description);
            let reason = CloseReason { code, description: Some(description) };
            let _ = tokio::time::timeout(Duration::from_secs(1), session.close(Some(reason))).await;
        }
    }
}

/// A reply on its way: replies are written in the order of the frames they answer.
type Reply = std::pin::Pin<Box<dyn Future<Output = ServerFrame> + Send>>;

/// Sends a connection may have waiting for the store at once; more frames wait unread.
const MAX_IN_FLIGHT: usize = 64;

/// One client text frame → its one reply frame. A send is queued for the store here, in
/// frame order, and its reply is awaited later, so a connection can have several sends in
/// flight (group commit stores them together); a read waits until the sends before it are
/// answered (the session loop drains them first).
fn handle_frame(
    state: &std::sync::Arc<AppState>,
    conn: &Connection,
    frame: Result<ClientFrame, FrameError>,
    log: &Logger,
) -> Reply {
    let frame = match frame {
        Ok(f) => f,
        Err(e) => return ready(ServerFrame::new(e.code, e.reason)),
    };
    let chat = state.services.chat.clone();
    let (user, peer, conn_id, log) = (conn.user, conn.peer, conn.conn_id, log.clone());
    match frame {
        ClientFrame::Send { content, client_msg_id } => {
            let cmid = client_msg_id.clone();
            match chat.submit(user, peer, content, client_msg_id, Some(conn_id)) {
                Err(e) => ready(error_frame(&log, &e).with_client_msg_id(cmid)),
                Ok(pending) => {
                    // a task of its own: the read flag is settled even if this connection ends first
                    let finish = tokio::spawn(pending.finish());
                    Box::pin(async move {
                        match finish.await {
                            Ok(Ok(out)) => out.frame(),
                            Ok(Err(e)) => error_frame(&log, &e).with_client_msg_id(cmid),
                            Err(e) => {
                                error_frame(&log, &ServiceError::Internal(e.to_string())).with_client_msg_id(cmid)
                            }
                        }
                    })
                }
            }
        }
        ClientFrame::History { before_seq, limit } => Box::pin(async move {
            match chat.history(user, peer, before_seq, limit).await {
                Ok(page) if page.is_empty() => ServerFrame::new(ReplyCode::End, "no more history"),
                Ok(page) => ServerFrame::new(ReplyCode::History, "history").with_messages(page),
                Err(e) => error_frame(&log, &e),
            }
        }),
        ClientFrame::Unread => Box::pin(async move {
            match chat.unread(user, peer).await {
                Ok(list) if list.is_empty() => ServerFrame::new(ReplyCode::End, "no unread messages"),
                Ok(list) => ServerFrame::new(ReplyCode::Unread, "unread").with_messages(list),
                Err(e) => error_frame(&log, &e),
            }
        }),
    }
}

fn ready(frame: ServerFrame) -> Reply {
    Box::pin(std::future::ready(frame))
}
