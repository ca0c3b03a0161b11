//! What connections hear besides messages: read receipts (50010), typing (50011) and presence
//! (50012). Nothing here is stored but read positions.

use chat_model::{ServerFrame, conversation_id};
use slog::warn;

use crate::{
    chat::{ChatService, to_i64},
    conversation::MAX_CONVERSATIONS,
    error::{ServiceError, ServiceResult},
    hub::Outbound,
    reads::{ReadMark, Seen},
};

impl ChatService {
    /// A read receipt: `user` has seen the conversation with `peer` up to `read_seq`. Moves the
    /// user's read position there (never backwards, at most the last seq), marks the messages
    /// to the user up to it read, and tells the user's other connections (not `conn_id`, which
    /// gets the reply) and the peer's. Returns the position (0 when nothing was ever sent).
    pub async fn read(&self, user: u64, peer: u64, read_seq: i64, conn_id: Option<u64>) -> ServiceResult<i64> {
        let mark = ReadMark {
            conv: conversation_id(user, peer).into(),
            reader: to_i64(user)?,
            peer: to_i64(peer)?,
            seq: read_seq,
            seen: Seen::UpTo,
        };
        Ok(self.reads.apply(&mark, conn_id).await?.unwrap_or(0))
    }

    /// `user` is typing to `peer` (a user: the connection checked it, [`Self::check_peer`]):
    /// the peer's connections hear of it, at most once per [`crate::limits::TYPING_EVERY`] per
    /// conversation (the rest are dropped). Nothing is stored, no store is asked.
    pub fn typing(&self, user: u64, peer: u64) -> ServiceResult<()> {
        if peer == user {
            return Err(ServiceError::SelfChat);
        }
        if self.limits.typing(user, peer) {
            let frame = Outbound::text(ServerFrame::typing(&conversation_id(user, peer), user).to_json());
            self.hub.push(peer, user, &frame, None);
        }
        Ok(())
    }

    /// Tells the device connections of everyone `user` has a conversation with that the user
    /// came online or went offline (in the background: nobody waits for it). The state is read
    /// again just before the event goes out, so that of two quick changes (a reload: offline,
    /// then online) whichever task goes out last tells the truth.
    pub(crate) fn announce(&self, user: u64, online: bool) {
        let (conversations, hub, log) = (self.conversations.clone(), self.hub.clone(), self.log.clone());
        let presence = self.presence.clone();
        tokio::spawn(async move {
            let Ok(me) = i64::try_from(user) else { return };
            let summaries = match conversations.list_for(me, MAX_CONVERSATIONS).await {
                Ok(s) => s,
                Err(e) => {
                    warn!(log, "presence not announced"; "user_id" => user, "error" => %e);
                    return;
                }
            };
            let online = presence.live_connections(user).await.map(|n| n > 0).unwrap_or(online);
            let frame = Outbound::text(ServerFrame::presence(user, online).to_json());
            for peer in summaries.iter().flat_map(|s| s.users.iter()).filter(|&&u| u != me) {
                hub.push_devices(*peer as u64, &frame);
            }
        });
    }
}
