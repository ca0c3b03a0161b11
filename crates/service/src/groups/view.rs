//! What members see of a group: the summary in their list, and the group with its members
//! and their read positions.

use chat_model::{
    PublicUser, Target,
    group::{GroupView, MemberView},
};
use chrono::SecondsFormat;

use super::{GroupService, Membership};
use crate::error::{ServiceError, ServiceResult};

impl GroupService {
    /// The group as `actor` sees it, with its members (fresh from MySQL) and their positions.
    pub(super) async fn view(&self, actor: u64, id: u64) -> ServiceResult<GroupView> {
        let group = self.cache.get(id).await?;
        let ids: Vec<u64> = group.members.iter().map(|m| m.user_id).collect();
        let conv = Target::Group(id).conv(actor);
        let (users, positions) = tokio::join!(self.users.find_by_ids(&ids), self.conversations.read_positions(&conv));
        let (users, positions) = (users?, positions?);
        let by_id: std::collections::HashMap<u64, PublicUser> =
            users.iter().map(|u| (u.id, PublicUser::from(u))).collect();
        let members = group
            .members
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
        let mut view = summary(&group, actor).ok_or(ServiceError::NotMember)?;
        view.members = Some(members);
        Ok(view)
    }
}

/// The group without its members, as `actor` (a member) sees it.
pub(super) fn summary(group: &Membership, actor: u64) -> Option<GroupView> {
    let me = group.member(actor)?;
    Some(GroupView {
        id: group.group.id,
        name: group.group.name.clone(),
        owner: group.group.owner,
        member_count: group.len(),
        created_at: group.group.created_at.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true),
        my_role: me.role(),
        members: None,
    })
}
