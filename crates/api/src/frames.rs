//! One client text frame → its one reply frame (a future: sends are answered once stored).

use std::sync::Arc;

use chat_model::{ClientFrame, ReplyCode, ServerFrame, frame::FrameError};
use chat_service::{Connection, ServiceError};
use slog::Logger;

use crate::{error::error_frame, state::AppState};

/// A reply on its way: replies are written in the order of the frames they answer.
pub(crate) type Reply = std::pin::Pin<Box<dyn Future<Output = ServerFrame> + Send>>;

/// A send is queued for the store here, in frame order, and its reply is awaited later, so a
/// connection can have several sends in flight (group commit stores them together); a read
/// waits until the sends before it are answered (the session loop drains them first).
///
/// `unread_after` is the last seq of the unread pages this connection was given.
pub(crate) fn handle(
    state: &Arc<AppState>,
    conn: &Connection,
    frame: Result<ClientFrame, FrameError>,
    unread_after: Option<i64>,
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
                    // a task of its own: the answer is awaited even if this connection ends first
                    let finish = tokio::spawn(pending.finish());
                    Box::pin(async move {
                        match finish.await {
                            Ok(Ok(out)) => out.frame(),
                            Ok(Err(e)) => error_frame(&log, &e).with_client_msg_id(cmid),
                            Err(_) => error_frame(&log, &ServiceError::OutcomeUnknown).with_client_msg_id(cmid),
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
            match chat.unread(user, peer, unread_after).await {
                Ok(page) if page.messages.is_empty() => ServerFrame::new(ReplyCode::End, "no unread messages"),
                Ok(page) => {
                    ServerFrame::new(ReplyCode::Unread, "unread").with_messages(page.messages).with_more(page.more)
                }
                Err(e) => error_frame(&log, &e),
            }
        }),
    }
}

pub(crate) fn ready(frame: ServerFrame) -> Reply {
    Box::pin(std::future::ready(frame))
}
