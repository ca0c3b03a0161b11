//! Groups in MySQL: `groups` (soft-deleted when dissolved) and `group_members`. The rules (who
//! may do what, who inherits the ownership) are the service's; this stores what it decided, each
//! change in one transaction.

use chat_model::{
    group::{Group, GroupMember, NewGroupMember, Role},
    schema::{group_members, groups},
};
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _,
    sql_types::{BigInt, Datetime, Nullable, Unsigned},
};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};

use crate::{
    error::{Calls, DaoResult},
    mysql::{MysqlPool, conn},
};

#[derive(Clone)]
pub struct GroupDao {
    pool: MysqlPool,
    calls: Calls,
}

impl GroupDao {
    pub(crate) fn new(pool: MysqlPool, calls: Calls) -> Self {
        GroupDao { pool, calls }
    }

    /// Creates a group owned by `owner` with `members` (the owner among them or not), all
    /// joining at seq `join_seq`; returns its id.
    pub async fn create(&self, name: &str, owner: u64, members: &[u64], join_seq: i64) -> DaoResult<u64> {
        let mut c = conn(&self.pool).await?;
        let (name, members) = (name.to_string(), members.to_vec());
        let created = c.transaction(async move |c| {
            diesel::insert_into(groups::table)
                .values((groups::name.eq(&name), groups::owner.eq(owner)))
                .execute(c)
                .await?;
            let id: u64 =
                diesel::select(diesel::dsl::sql::<Unsigned<BigInt>>("LAST_INSERT_ID()")).get_result(c).await?;
            let mut rows = vec![member_row(id, owner, Role::Owner, join_seq)];
            rows.extend(members.iter().filter(|&&u| u != owner).map(|&u| member_row(id, u, Role::Member, join_seq)));
            diesel::insert_into(group_members::table).values(&rows).execute(c).await?;
            Ok::<_, diesel::result::Error>(id)
        });
        self.calls.run(created).await
    }

    /// A group that is not dissolved.
    pub async fn find(&self, id: u64) -> DaoResult<Option<Group>> {
        let mut c = conn(&self.pool).await?;
        let query =
            groups::table.filter(groups::id.eq(id)).filter(groups::deleted_at.is_null()).select(Group::as_select());
        self.calls.run(async { query.first(&mut c).await.optional() }).await
    }

    /// A group's members, the longest-standing first.
    pub async fn members(&self, id: u64) -> DaoResult<Vec<GroupMember>> {
        let mut c = conn(&self.pool).await?;
        let query = group_members::table
            .filter(group_members::group_id.eq(id))
            .order((group_members::joined_at.asc(), group_members::user_id.asc()))
            .select(GroupMember::as_select());
        self.calls.run(query.load(&mut c)).await
    }

    /// One member of a group, if `user` is one.
    pub async fn member(&self, id: u64, user: u64) -> DaoResult<Option<GroupMember>> {
        let mut c = conn(&self.pool).await?;
        let query = group_members::table
            .filter(group_members::group_id.eq(id))
            .filter(group_members::user_id.eq(user))
            .select(GroupMember::as_select());
        self.calls.run(async { query.first(&mut c).await.optional() }).await
    }

    /// The groups `user` is a member of (not dissolved), the newest first.
    pub async fn groups_of(&self, user: u64) -> DaoResult<Vec<Group>> {
        let mut c = conn(&self.pool).await?;
        let query = groups::table
            .inner_join(group_members::table)
            .filter(group_members::user_id.eq(user))
            .filter(groups::deleted_at.is_null())
            .order(groups::id.desc())
            .select(Group::as_select());
        self.calls.run(query.load(&mut c)).await
    }

    /// Adds members (those already in are left as they are), joining at `join_seq`; returns how
    /// many were added.
    pub async fn add_members(&self, id: u64, users: &[u64], join_seq: i64) -> DaoResult<usize> {
        let mut c = conn(&self.pool).await?;
        let rows: Vec<NewGroupMember> = users.iter().map(|&u| member_row(id, u, Role::Member, join_seq)).collect();
        self.calls.run(diesel::insert_or_ignore_into(group_members::table).values(&rows).execute(&mut c)).await
    }

    /// Removes a member; false when `user` was not one.
    pub async fn remove_member(&self, id: u64, user: u64) -> DaoResult<bool> {
        let mut c = conn(&self.pool).await?;
        let delete = diesel::delete(
            group_members::table.filter(group_members::group_id.eq(id)).filter(group_members::user_id.eq(user)),
        );
        Ok(self.calls.run(delete.execute(&mut c)).await? > 0)
    }

    /// Makes a member an admin or a plain member (the owner changes with [`Self::set_owner`]);
    /// false when `user` is not a member, or is the owner.
    pub async fn set_admin(&self, id: u64, user: u64, admin: bool) -> DaoResult<bool> {
        let role = if admin { Role::Admin } else { Role::Member };
        let mut c = conn(&self.pool).await?;
        let update = diesel::update(
            group_members::table
                .filter(group_members::group_id.eq(id))
                .filter(group_members::user_id.eq(user))
                .filter(group_members::role.ne(Role::Owner.as_str())),
        )
        .set(group_members::role.eq(role.as_str()));
        Ok(self.calls.run(update.execute(&mut c)).await? > 0)
    }

    /// Hands the ownership to `to` (a member), in one transaction: the group's owner, `to`'s
    /// role, and the previous owner (if still a member) becomes an admin.
    pub async fn set_owner(&self, id: u64, to: u64) -> DaoResult<()> {
        let mut c = conn(&self.pool).await?;
        let moved = c.transaction(async move |c| {
            let of = |u: u64| {
                group_members::table.filter(group_members::group_id.eq(id)).filter(group_members::user_id.eq(u))
            };
            let previous: u64 = groups::table.filter(groups::id.eq(id)).select(groups::owner).first(c).await?;
            diesel::update(of(previous)).set(group_members::role.eq(Role::Admin.as_str())).execute(c).await?;
            diesel::update(of(to)).set(group_members::role.eq(Role::Owner.as_str())).execute(c).await?;
            diesel::update(groups::table.filter(groups::id.eq(id))).set(groups::owner.eq(to)).execute(c).await?;
            Ok::<_, diesel::result::Error>(())
        });
        self.calls.run(moved).await
    }

    /// Renames a group.
    pub async fn rename(&self, id: u64, name: &str) -> DaoResult<()> {
        let mut c = conn(&self.pool).await?;
        let update = diesel::update(groups::table.filter(groups::id.eq(id))).set(groups::name.eq(name));
        self.calls.run(update.execute(&mut c)).await.map(|_| ())
    }

    /// Dissolves a group: marked deleted, its members removed.
    pub async fn dissolve(&self, id: u64) -> DaoResult<()> {
        let mut c = conn(&self.pool).await?;
        let dissolved = c.transaction(async move |c| {
            diesel::update(groups::table.filter(groups::id.eq(id)))
                .set(groups::deleted_at.eq(diesel::dsl::sql::<Nullable<Datetime>>("CURRENT_TIMESTAMP(3)")))
                .execute(c)
                .await?;
            diesel::delete(group_members::table.filter(group_members::group_id.eq(id))).execute(c).await?;
            Ok::<_, diesel::result::Error>(())
        });
        self.calls.run(dissolved).await
    }
}

fn member_row(group_id: u64, user_id: u64, role: Role, join_seq: i64) -> NewGroupMember {
    NewGroupMember { group_id, user_id, role: role.as_str().to_string(), join_seq }
}
