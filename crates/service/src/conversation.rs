//! The conversation list: each peer and each group of a user, the last message, the read
//! positions and the unread count they give, whether the peer is online.

use std::collections::HashMap;

use chat_dao::{ConversationDao, ConversationSummary, DaoGroup, GroupDao, MessageDao, PresenceDao, UserDao};
use chat_model::{ChatMessage, ConversationView, GroupRef, PublicUser, Target, config::GroupSettings};

use crate::{chat::to_i64, error::ServiceResult, limits::Limits};

/// At most this many conversations are listed (the most recent), and as many groups.
pub const MAX_CONVERSATIONS: i64 = 200;
/// Groups of a user looked at for the list (the most recently active of them are listed).
const MAX_GROUPS: usize = 2000;

#[derive(Clone)]
pub struct ConversationService {
    conversations: ConversationDao,
    messages: MessageDao,
    users: UserDao,
    presence: PresenceDao,
    groups: GroupDao,
    settings: GroupSettings,
    limits: Limits,
}

impl ConversationService {
    pub(crate) fn new(daos: &DaoGroup, presence: PresenceDao, settings: &GroupSettings, limits: Limits) -> Self {
        ConversationService {
            conversations: daos.conversation.clone(),
            messages: daos.message.clone(),
            users: daos.user.clone(),
            presence,
            groups: daos.group.clone(),
            settings: settings.clone(),
            limits,
        }
    }

    /// The user's conversations, the most recently active first: the direct ones and the
    /// groups. A handful of indexed queries and one Redis pipeline, whatever the number of
    /// conversations: the summaries (with the read positions), my groups with my membership and
    /// their member counts (MySQL), their summaries (with my position only), the last messages,
    /// the messages after my positions, the peers, who of them is online. A presence store that does not answer shows everyone offline.
    ///
    /// `unread` is the messages after my read position that others sent (one aggregate for the
    /// direct conversations, one for the groups); in a group, counted from what I may see.
    pub async fn list(&self, user: u64) -> ServiceResult<Vec<ConversationView>> {
        self.limits.read(user)?;
        let me = to_i64(user)?;
        let (direct, groups) =
            tokio::join!(self.conversations.list_for(me, MAX_CONVERSATIONS), self.groups.groups_of(user));
        let (direct, groups) = (direct?, groups?);
        // every group of mine (the most recently active are listed, whatever their age)
        let groups: Vec<_> = groups.into_iter().filter(|(_, me)| me.is_active()).take(MAX_GROUPS).collect();
        let ids: Vec<u64> = groups.iter().map(|(g, _)| g.id).collect();
        let group_convs: Vec<String> = ids.iter().map(|&g| Target::Group(g).conv(user)).collect();
        let (counts, group_summaries) =
            tokio::join!(self.groups.member_counts(&ids), self.conversations.find_many(&group_convs, me));
        let counts: HashMap<u64, i64> = counts?.into_iter().collect();
        let refs: HashMap<String, (GroupRef, i64)> = groups
            .iter()
            .map(|(g, member)| {
                let count = counts.get(&g.id).copied().unwrap_or(0) as usize;
                let r = GroupRef { id: g.id, name: g.name.clone(), member_count: count };
                let floor = member.sees_after(self.settings.history_for_new_members);
                (Target::Group(g.id).conv(user), (r, floor))
            })
            .collect();
        let mut group_summaries: Vec<ConversationSummary> =
            group_summaries?.into_iter().filter(|s| refs.contains_key(&s.conv)).collect();
        group_summaries.sort_by_key(|s| std::cmp::Reverse(s.last_at));
        group_summaries.truncate(MAX_CONVERSATIONS as usize);

        let last_at: Vec<(String, i64)> =
            direct.iter().chain(&group_summaries).map(|s| (s.conv.clone(), s.last_seq)).collect();
        let peer_of = |users: &[i64]| -> Option<u64> {
            users.iter().copied().find(|&u| u != me).or(Some(me)).and_then(|u| u64::try_from(u).ok())
        };
        let peer_ids: Vec<u64> = direct.iter().filter_map(|s| peer_of(&s.users)).collect();
        let mine: Vec<(String, i64)> = direct.iter().map(|s| (s.conv.clone(), s.read_seq(me))).collect();
        let mine_in_groups: Vec<(String, i64)> = group_summaries
            .iter()
            .map(|s| (s.conv.clone(), s.read_seq(me).max(refs.get(&s.conv).map_or(0, |r| r.1))))
            .collect();
        let (last, peers, online, unread, group_unread) = tokio::join!(
            self.messages.find_at(&last_at),
            self.users.find_by_ids(&peer_ids),
            self.presence.online_among(&peer_ids),
            self.messages.counts_after(me, &mine),
            self.messages.others_counts_after(me, &mine_in_groups)
        );
        let (mut unread, group_unread) = (unread?, group_unread?);
        unread.extend(group_unread);
        let last: HashMap<String, ChatMessage> = last?.iter().map(|d| (d.conv.clone(), ChatMessage::from(d))).collect();
        let peers: HashMap<u64, PublicUser> = peers?.iter().map(|u| (u.id, PublicUser::from(u))).collect();
        let online = online.unwrap_or_default();

        let mut views: Vec<(bson::DateTime, ConversationView)> = Vec::new();
        for s in &direct {
            let Some(peer_id) = peer_of(&s.users) else { continue };
            let Some(peer) = peers.get(&peer_id).cloned() else { continue };
            let (read_seq, peer_read_seq) = (s.read_seq(me), s.read_seq(peer_id as i64));
            // the flag follows the recipient's position a moment later: show what the position
            // already says
            let last_message = last.get(&s.conv).cloned().map(|mut m| {
                let position = if m.to == Some(user) { read_seq } else { peer_read_seq };
                m.read |= m.seq <= position;
                m
            });
            views.push((
                s.last_at,
                ConversationView {
                    peer: Some(peer),
                    group: None,
                    last_message,
                    unread: unread.get(&s.conv).copied().unwrap_or(0),
                    last_seq: s.last_seq,
                    read_seq,
                    peer_read_seq: Some(peer_read_seq),
                    online: Some(online.contains(&peer_id)),
                },
            ));
        }
        for s in &group_summaries {
            let Some((group, floor)) = refs.get(&s.conv) else { continue };
            let last_message = last.get(&s.conv).filter(|m| m.seq > *floor).cloned();
            views.push((
                s.last_at,
                ConversationView {
                    peer: None,
                    group: Some(group.clone()),
                    last_message,
                    unread: unread.get(&s.conv).copied().unwrap_or(0),
                    last_seq: s.last_seq,
                    read_seq: s.read_seq(me),
                    peer_read_seq: None,
                    online: None,
                },
            ));
        }
        views.sort_by_key(|v| std::cmp::Reverse(v.0));
        Ok(views.into_iter().map(|(_, v)| v).take(MAX_CONVERSATIONS as usize).collect())
    }
}
