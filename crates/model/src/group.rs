//! Groups: the MySQL rows of a group and of its members.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::schema::{group_members, groups};

/// A member's role, stored as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// The role of a stored name; an unknown one is a plain member.
    pub fn parse(s: &str) -> Role {
        match s {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            _ => Role::Member,
        }
    }
}

/// A row of `groups`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = groups)]
#[diesel(check_for_backend(diesel::mysql::Mysql))]
pub struct Group {
    pub id: u64,
    pub name: String,
    pub owner: u64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
}

/// The `join_seq` of a member whose joining is not recorded yet (its system message is still
/// to be written): they are not a member until it is.
pub const PENDING_JOIN: i64 = i64::MAX;

/// A row of `group_members`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = group_members)]
#[diesel(check_for_backend(diesel::mysql::Mysql))]
pub struct GroupMember {
    pub group_id: u64,
    pub user_id: u64,
    pub role: String,
    pub joined_at: NaiveDateTime,
    /// The group's seq at which the member joined: they see the timeline from it.
    pub join_seq: i64,
}

impl GroupMember {
    pub fn role(&self) -> Role {
        Role::parse(&self.role)
    }

    /// Their joining is recorded: they are a member.
    pub fn is_active(&self) -> bool {
        self.join_seq != PENDING_JOIN
    }

    /// The seq after which they see the timeline: before their joining's system message, or
    /// 0 when new members read all of it.
    pub fn sees_after(&self, history_for_new_members: bool) -> i64 {
        if history_for_new_members { 0 } else { (self.join_seq - 1).max(0) }
    }
}

/// A row of `group_events` (the outbox of membership changes).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = crate::schema::group_events)]
#[diesel(check_for_backend(diesel::mysql::Mysql))]
pub struct GroupEventRow {
    pub id: u64,
    pub group_id: u64,
    pub actor: u64,
    /// The JSON of the [`crate::GroupEvent`].
    pub event: String,
    pub created_at: NaiveDateTime,
    pub recorded_seq: Option<i64>,
}

/// The values of a new `group_members` row.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = group_members)]
pub struct NewGroupMember {
    pub group_id: u64,
    pub user_id: u64,
    pub role: String,
    pub join_seq: i64,
}

/// `POST /groups`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroupRequest {
    /// 1 to 30 characters, not blank.
    #[schema(min_length = 1, max_length = 30, pattern = r"\S")]
    pub name: String,
    /// The other members (the creator is the owner, whether listed or not).
    #[serde(default, deserialize_with = "crate::ids::many")]
    pub members: Vec<u64>,
}

/// `PATCH /groups/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameGroupRequest {
    /// 1 to 30 characters, not blank.
    #[schema(min_length = 1, max_length = 30, pattern = r"\S")]
    pub name: String,
}

/// `POST /groups/{id}/members`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMembersRequest {
    #[serde(deserialize_with = "crate::ids::many")]
    pub user_ids: Vec<u64>,
}

/// `PUT /groups/{id}/members/{user}/role`: `admin` or `member` (the owner changes hands with
/// `POST /groups/{id}/owner`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// `admin` or `member` (not `owner`).
    #[schema(value_type = String, pattern = "^(admin|member)$")]
    pub role: Role,
}

/// `POST /groups/{id}/owner`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnerRequest {
    #[serde(deserialize_with = "crate::ids::one")]
    pub user_id: u64,
}

/// A group as its members see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupView {
    pub id: u64,
    pub name: String,
    pub owner: u64,
    pub member_count: usize,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The requester's role.
    pub my_role: Role,
    /// `GET /groups/{id}` and the answers to changes: the members, the longest-standing first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<MemberView>>,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberView {
    pub id: u64,
    pub user_name: String,
    pub nick_name: String,
    pub role: Role,
    /// The member's read position in the group's conversation.
    pub read_seq: i64,
    /// The seq of the system message of their joining.
    pub join_seq: i64,
    /// RFC 3339, UTC.
    pub joined_at: String,
}
