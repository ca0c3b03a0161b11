//! What members see of a group: the summary in their list, and the group with its members
//! and their read positions.

use chat_model::{
    PublicUser, Target,
    group::{Group, GroupMember, GroupView, MemberView},
};
use chrono::SecondsFormat;

use super::GroupService;
use crate::error::{ServiceError, ServiceResult};

impl GroupService {
    /// The group as `actor` (checked by the caller) sees it, with its members and their
    /// positions: from the membership cache, which loads the group and its members in one read.
    /// `positions_required`: a MongoDB that does not answer fails the view; else (the answer to
    /// a change, which is written whatever MongoDB does) the positions are shown as 0.
    pub(super) async fn view(&self, actor: u64, id: u64, positions_required: bool) -> ServiceResult<GroupView> {
        let group = self.cache.get(id).await?;
        let active: Vec<&GroupMember> = group.members.iter().filter(|m| m.is_active()).collect();
        let ids: Vec<u64> = active.iter().map(|m| m.user_id).collect();
        let conv = Target::Group(id).conv(actor);
        let (users, positions) = tokio::join!(self.users.find_by_ids(&ids), self.conversations.read_positions(&conv));
        let positions = match positions {
            Ok(p) => p,
            Err(e) if !positions_required => {
                slog::warn!(self.log, "read positions not shown"; "group_id" => id, "error" => %e);
                Default::default()
            }
            Err(e) => return Err(e.into()),
        };
        let users = users?;
        let by_id: std::collections::HashMap<u64, PublicUser> =
            users.iter().map(|u| (u.id, PublicUser::from(u))).collect();
        let members = active
            .iter()
            .filter_map(|m| {
                let u = by_id.get(&m.user_id)?;
                Some(MemberView {
                    id: m.user_id,
                    user_name: u.user_name.clone(),
                    nick_name: u.nick_name.clone(),
                    role: m.role(),
                    read_seq: positions.get(&(m.user_id as i64)).copied().unwrap_or(0),
                    join_seq: m.join_seq,
                    joined_at: m.joined_at.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true),
                })
            })
            .collect();
        let me = group.row(actor).ok_or(ServiceError::NotMember)?;
        let mut view = summary(&group.group, me, group.len());
        view.members = Some(members);
        Ok(view)
    }
}

/// The group without its members, as the member `me` sees it.
pub(super) fn summary(group: &Group, me: &GroupMember, member_count: usize) -> GroupView {
    GroupView {
        id: group.id,
        name: group.name.clone(),
        owner: group.owner,
        member_count,
        created_at: group.created_at.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true),
        my_role: me.role(),
        members: None,
    }
}
