//! What connections hear besides messages: read receipts (50010), typing (50011) and presence
//! (50012). Nothing here is stored but read positions.

use chat_model::{ServerFrame, Target};
use slog::warn;

use crate::{
    chat::{ChatService, to_i64},
    conversation::MAX_CONVERSATIONS,
    error::{ServiceError, ServiceResult},
    hub::Outbound,
    reads::{ReadMark, Seen},
};

impl ChatService {
    /// A read receipt: `user` has seen the conversation up to `read_seq`. Moves the user's read
    /// position there (never backwards, at most the last seq), marks the messages to the user
    /// up to it read (a direct conversation's), and tells the user's other connections (not
    /// `conn_id`, which gets the reply) and, in a direct conversation, the peer's. Returns the
    /// position (0 when nothing was ever sent). In a group, only a member may.
    pub async fn read(&self, user: u64, target: Target, read_seq: i64, conn_id: Option<u64>) -> ServiceResult<i64> {
        self.visible_after(user, target).await?;
        let mark = ReadMark {
            conv: target.conv(user).into(),
            reader: to_i64(user)?,
            with: target,
            seq: read_seq,
            seen: Seen::UpTo,
        };
        Ok(self.reads.apply(&mark, conn_id).await?.unwrap_or(0))
    }

    /// `user` is typing in the conversation (a peer the connection checked,
    /// [`Self::check_peer`], or a group the user is a member of): the peer's connections (the
    /// other members' who are online) hear of it, at most once per
    /// [`crate::limits::TYPING_EVERY`] per conversation (the rest are dropped). Nothing is
    /// stored; in a group the membership cache is asked.
    pub async fn typing(&self, user: u64, target: Target) -> ServiceResult<()> {
        match target {
            Target::User(peer) if peer == user => Err(ServiceError::SelfChat),
            Target::User(peer) => {
                if self.limits.typing(user, target) {
                    let frame = Outbound::text(ServerFrame::typing(&target.conv(user), None, user).to_json());
                    self.hub.push(peer, Target::User(user), &frame, None);
                }
                Ok(())
            }
            Target::Group(g) => {
                let group = self.groups.get(g).await?;
                if !group.is_member(user) {
                    return Err(ServiceError::NotMember);
                }
                if self.limits.typing(user, target) {
                    let frame = Outbound::text(ServerFrame::typing(&target.conv(user), Some(g), user).to_json());
                    let others = group.members.iter().map(|m| m.user_id).filter(|&m| m != user);
                    self.hub.push_group(g, others, user, &frame, None);
                }
                Ok(())
            }
        }
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
