//! The conversation list: each peer of a user, the last message, the read positions and the
//! unread count they give, whether the peer is online.

use std::collections::HashMap;

use chat_dao::{ConversationDao, DaoGroup, MessageDao, PresenceDao, UserDao};
use chat_model::{ChatMessage, ConversationView, PublicUser};

use crate::{chat::to_i64, error::ServiceResult, limits::Limits};

/// At most this many conversations are listed (the most recent).
pub const MAX_CONVERSATIONS: i64 = 200;

#[derive(Clone)]
pub struct ConversationService {
    conversations: ConversationDao,
    messages: MessageDao,
    users: UserDao,
    presence: PresenceDao,
    limits: Limits,
}

impl ConversationService {
    pub(crate) fn new(daos: &DaoGroup, limits: Limits) -> Self {
        ConversationService {
            conversations: daos.conversation.clone(),
            messages: daos.message.clone(),
            users: daos.user.clone(),
            presence: daos.presence.clone(),
            limits,
        }
    }

    /// The user's conversations, the most recently active first. Four indexed queries and
    /// one Redis pipeline, whatever the number of conversations: the summaries (with the read
    /// positions), their last messages, the messages after my positions, the peers, who of them
    /// is online. A presence store
    /// that does not answer shows everyone offline.
    ///
    /// `unread` is the messages to me after my read position (one aggregate for all of them).
    pub async fn list(&self, user: u64) -> ServiceResult<Vec<ConversationView>> {
        self.limits.read(user)?;
        let me = to_i64(user)?;
        let summaries = self.conversations.list_for(me, MAX_CONVERSATIONS).await?;
        let positions: Vec<(String, i64)> = summaries.iter().map(|s| (s.conv.clone(), s.last_seq)).collect();
        let peer_of = |users: &[i64]| -> Option<u64> {
            users.iter().copied().find(|&u| u != me).or(Some(me)).and_then(|u| u64::try_from(u).ok())
        };
        let peer_ids: Vec<u64> = summaries.iter().filter_map(|s| peer_of(&s.users)).collect();
        let mine: Vec<(String, i64)> = summaries.iter().map(|s| (s.conv.clone(), s.read_seq(me))).collect();
        let (last, peers, online, unread) = tokio::join!(
            self.messages.find_at(&positions),
            self.users.find_by_ids(&peer_ids),
            self.presence.online_among(&peer_ids),
            self.messages.counts_after(me, &mine)
        );
        let unread = unread?;
        let last: HashMap<String, ChatMessage> = last?.iter().map(|d| (d.conv.clone(), ChatMessage::from(d))).collect();
        let peers: HashMap<u64, PublicUser> = peers?.iter().map(|u| (u.id, PublicUser::from(u))).collect();
        let online = online.unwrap_or_default();
        Ok(summaries
            .iter()
            .filter_map(|s| {
                let peer_id = peer_of(&s.users)?;
                let peer = peers.get(&peer_id)?.clone();
                let read_seq = s.read_seq(me);
                Some(ConversationView {
                    peer,
                    last_message: last.get(&s.conv).cloned(),
                    unread: unread.get(&s.conv).copied().unwrap_or(0),
                    last_seq: s.last_seq,
                    read_seq,
                    peer_read_seq: s.read_seq(peer_id as i64),
                    online: online.contains(&peer_id),
                })
            })
            .collect())
    }
}
