//! One client text frame → its reply frame (a future: sends are answered once stored). Every
//! frame gets one reply, but an accepted typing frame, which gets none.

use std::sync::Arc;

use chat_model::{Addressed, ClientFrame, ReplyCode, ServerFrame, Target, frame::FrameError};
use chat_service::{Connection, ServiceError};
use slog::Logger;

use crate::{error::error_frame, state::AppState};

/// A reply on its way: replies are written in the order of the frames they answer.
pub(crate) type Reply = std::pin::Pin<Box<dyn Future<Output = Option<ServerFrame>> + Send>>;

/// The conversation a frame is about: the one a pinned socket carries (a `to` or `group`
/// naming another is refused), or the frame's `to` or `group` on a device connection (where
/// one is required).
pub(crate) fn target_of(conn: &Connection, to: Option<Target>) -> Result<Target, Reply> {
    let invalid = |reason: String| ready(ServerFrame::new(ReplyCode::InvalidFrame, reason));
    match (conn.pin, to) {
        (Some(pin), None) => Ok(pin),
        (Some(pin), Some(to)) if to == pin => Ok(pin),
        (Some(pin), Some(to)) => Err(invalid(format!(
            "this socket carries {}, not {}; a device connection (/ws) carries all",
            describe(pin),
            describe(to)
        ))),
        (None, Some(to)) => Ok(to),
        (None, None) => Err(invalid(
            "missing field `to` or `group`: the peer's user id or the group's id names the conversation".into(),
        )),
    }
}

fn describe(t: Target) -> String {
    match t {
        Target::User(u) => format!("the conversation with user {u}"),
        Target::Group(g) => format!("group {g}"),
    }
}

/// A send is queued for the store here, in frame order, and its reply is awaited later, so a
/// connection can have several sends in flight (group commit stores them together); a read
/// waits until the sends before it are answered (the session loop drains them first).
///
/// `target` is checked by the caller ([`target_of`], and that a peer exists; a group's
/// membership is checked by the service); `unread_after` is the last seq of the unread pages of
/// that conversation this connection was given.
pub(crate) fn handle(
    state: &Arc<AppState>,
    conn: &Connection,
    peer: Target,
    frame: ClientFrame,
    unread_after: Option<i64>,
    log: &Logger,
) -> Reply {
    let chat = state.services.chat.clone();
    let (user, conn_id, log) = (conn.user, conn.conn_id, log.clone());
    match frame {
        ClientFrame::Send { content, client_msg_id } => {
            let cmid = client_msg_id.clone();
            match chat.submit(user, peer, content, client_msg_id, Some(conn_id)) {
                Err(e) => ready(error_frame(&log, &e).with_client_msg_id(cmid)),
                Ok(pending) => {
                    // a task of its own: the answer is awaited even if this connection ends first
                    let finish = tokio::spawn(pending.finish());
                    Box::pin(async move {
                        Some(match finish.await {
                            Ok(Ok(out)) => out.frame(),
                            Ok(Err(e)) => error_frame(&log, &e).with_client_msg_id(cmid),
                            Err(_) => error_frame(&log, &ServiceError::OutcomeUnknown).with_client_msg_id(cmid),
                        })
                    })
                }
            }
        }
        ClientFrame::History { before_seq, limit } => Box::pin(async move {
            Some(match chat.history(user, peer, before_seq, limit).await {
                Ok(page) if page.is_empty() => ServerFrame::new(ReplyCode::End, "no more history"),
                Ok(page) => ServerFrame::new(ReplyCode::History, "history").with_messages(page),
                Err(e) => error_frame(&log, &e),
            })
        }),
        ClientFrame::Unread => Box::pin(async move {
            Some(match chat.unread(user, peer, unread_after).await {
                Ok(page) if page.messages.is_empty() => ServerFrame::new(ReplyCode::End, "no unread messages"),
                Ok(page) => {
                    ServerFrame::new(ReplyCode::Unread, "unread").with_messages(page.messages).with_more(page.more)
                }
                Err(e) => error_frame(&log, &e),
            })
        }),
        ClientFrame::CatchUp { after_seq, limit } => Box::pin(async move {
            Some(match chat.catch_up(user, peer, after_seq, limit).await {
                Ok(page) if page.messages.is_empty() => ServerFrame::new(ReplyCode::End, "nothing after that seq"),
                Ok(page) => {
                    ServerFrame::new(ReplyCode::CatchUp, "catch-up").with_messages(page.messages).with_more(page.more)
                }
                Err(e) => error_frame(&log, &e),
            })
        }),
        ClientFrame::Read { read_seq } => Box::pin(async move {
            Some(match chat.read(user, peer, read_seq, Some(conn_id)).await {
                Ok(position) => ServerFrame::read_receipt(&peer.conv(user), peer.group(), user, position),
                Err(e) => error_frame(&log, &e),
            })
        }),
        ClientFrame::Typing => {
            Box::pin(async move { chat.typing(user, peer).await.err().map(|e| error_frame(&log, &e).about(peer)) })
        }
    }
}

/// A frame that did not parse: its error frame.
pub(crate) fn refused(e: FrameError) -> Reply {
    ready(ServerFrame::new(e.code, e.reason))
}

pub(crate) fn ready(frame: ServerFrame) -> Reply {
    Box::pin(std::future::ready(Some(frame)))
}

/// Whether a frame reads what the sends before it stored (it waits for their answers).
pub(crate) fn is_read(frame: &Addressed) -> bool {
    matches!(frame.frame, ClientFrame::History { .. } | ClientFrame::Unread | ClientFrame::CatchUp { .. })
}
