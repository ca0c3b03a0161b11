//! The conversation list: each peer of a user, the last message, the unread count.

use std::collections::HashMap;

use chat_dao::{ConversationDao, DaoGroup, MessageDao, UserDao};
use chat_model::{ChatMessage, ConversationView, PublicUser};

use crate::{chat::to_i64, error::ServiceResult, limits::Limits};

/// At most this many conversations are listed (the most recent).
pub const MAX_CONVERSATIONS: i64 = 200;

#[derive(Clone)]
pub struct ConversationService {
    conversations: ConversationDao,
    messages: MessageDao,
    users: UserDao,
    limits: Limits,
}

impl ConversationService {
    pub(crate) fn new(daos: &DaoGroup, limits: Limits) -> Self {
        ConversationService {
            conversations: daos.conversation.clone(),
            messages: daos.message.clone(),
            users: daos.user.clone(),
            limits,
        }
    }

    /// The user's conversations, the most recently active first. Four indexed queries,
    /// whatever the number of messages: the summaries, their last messages, this user's
    /// unread counts, the peers.
    pub async fn list(&self, user: u64) -> ServiceResult<Vec<ConversationView>> {
        self.limits.read(user)?;
        let me = to_i64(user)?;
        let summaries = self.conversations.list_for(me, MAX_CONVERSATIONS).await?;
        let positions: Vec<(String, i64)> = summaries.iter().map(|s| (s.conv.clone(), s.last_seq)).collect();
        let (last, unread) = tokio::join!(self.messages.find_at(&positions), self.messages.unread_counts(me));
        let last: HashMap<String, ChatMessage> = last?.iter().map(|d| (d.conv.clone(), ChatMessage::from(d))).collect();
        let unread = unread?;
        let peer_of = |users: &[i64]| -> Option<u64> {
            users.iter().copied().find(|&u| u != me).or(Some(me)).and_then(|u| u64::try_from(u).ok())
        };
        let peer_ids: Vec<u64> = summaries.iter().filter_map(|s| peer_of(&s.users)).collect();
        let peers: HashMap<u64, PublicUser> =
            self.users.find_by_ids(&peer_ids).await?.iter().map(|u| (u.id, PublicUser::from(u))).collect();
        Ok(summaries
            .iter()
            .filter_map(|s| {
                let peer = peers.get(&peer_of(&s.users)?)?.clone();
                Some(ConversationView {
                    peer,
                    last_message: last.get(&s.conv).cloned(),
                    unread: unread.get(&s.conv).copied().unwrap_or(0),
                })
            })
            .collect())
    }
}
