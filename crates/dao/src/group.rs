//! Groups in MySQL: `groups` (soft-deleted when dissolved), `group_members` and the outbox of
//! their changes, `group_events`. The rules (who may do what, who inherits the ownership) are
//! the service's; [`GroupDao::change`] runs them on the group as it is, under a lock on its row,
//! and writes what they decided together with the events to record, in one transaction: two
//! changes of one group never both act on what the other is changing, and a change is never
//! written without its event (nor an event without its change).

use chat_model::{
    group::{Group, GroupEventRow, GroupMember, NewGroupMember, PENDING_JOIN, Role},
    schema::{group_events, group_members, groups},
};
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _,
    sql_types::{BigInt, Datetime, Nullable, Unsigned},
};
use diesel_async::{AsyncConnection as _, AsyncMysqlConnection, RunQueryDsl as _};

use crate::{
    error::{Calls, DaoResult},
    mysql::{MysqlPool, conn},
};

/// One write of a change, as the rules decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupWrite {
    Rename(String),
    /// New members, pending until their event is recorded ([`PENDING_JOIN`]).
    Add(Vec<u64>),
    Remove(u64),
    /// Admin or plain member.
    SetRole(u64, Role),
    /// The ownership to another member; the previous owner becomes an admin.
    SetOwner(u64),
    /// Marked deleted, its members removed.
    Dissolve,
}

/// What the rules decided: the writes, and the events (JSON) to record, in order.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    pub writes: Vec<GroupWrite>,
    pub events: Vec<String>,
}

/// How a [`GroupDao::change`] ended.
#[derive(Debug)]
pub enum Changed<E> {
    /// Written; the ids of its events, in order.
    Done(Vec<u64>),
    /// No such group (or it was dissolved).
    NoGroup,
    /// The rules refused: nothing written.
    Refused(E),
}

enum Abort<E> {
    Db(diesel::result::Error),
    NoGroup,
    Refused(E),
}

impl<E> From<diesel::result::Error> for Abort<E> {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Db(e)
    }
}

#[derive(Clone)]
pub struct GroupDao {
    pool: MysqlPool,
    calls: Calls,
}

impl GroupDao {
    pub(crate) fn new(pool: MysqlPool, calls: Calls) -> Self {
        GroupDao { pool, calls }
    }

    /// Creates a group owned by `owner` with `members` (the owner among them or not), every one
    /// pending until `event` (its creation) is recorded; returns its id and the event's.
    pub async fn create(&self, name: &str, owner: u64, members: &[u64], event: &str) -> DaoResult<(u64, u64)> {
        let mut c = conn(&self.pool).await?;
        let (name, members, event) = (name.to_string(), members.to_vec(), event.to_string());
        let created = c.transaction(async move |c| {
            diesel::insert_into(groups::table)
                .values((groups::name.eq(&name), groups::owner.eq(owner)))
                .execute(c)
                .await?;
            let id = last_insert_id(c).await?;
            let mut rows = vec![member_row(id, owner, Role::Owner)];
            rows.extend(members.iter().filter(|&&u| u != owner).map(|&u| member_row(id, u, Role::Member)));
            diesel::insert_into(group_members::table).values(&rows).execute(c).await?;
            let event_id = insert_event(c, id, owner, &event).await?;
            Ok::<_, diesel::result::Error>((id, event_id))
        });
        self.calls.run(created).await
    }

    /// Runs `decide` on the group and its members as they are, with the group's row locked
    /// (`FOR UPDATE`), and writes what it decided and its events in the same transaction.
    pub async fn change<E: Send + 'static>(
        &self,
        id: u64,
        actor: u64,
        decide: impl FnOnce(&Group, &[GroupMember]) -> Result<Decision, E> + Send + 'static,
    ) -> DaoResult<Changed<E>> {
        let mut c = conn(&self.pool).await?;
        let changed = c.transaction(async move |c| {
            let group: Option<Group> = groups::table
                .filter(groups::id.eq(id))
                .filter(groups::deleted_at.is_null())
                .for_update()
                .select(Group::as_select())
                .first(c)
                .await
                .optional()?;
            let Some(group) = group else { return Err(Abort::NoGroup) };
            let members = members_of(c, id).await?;
            let decision = decide(&group, &members).map_err(Abort::Refused)?;
            for w in &decision.writes {
                apply(c, &group, w).await?;
            }
            let mut ids = Vec::with_capacity(decision.events.len());
            for e in &decision.events {
                ids.push(insert_event(c, id, actor, e).await?);
            }
            Ok::<_, Abort<E>>(ids)
        });
        // the deadline bounds the whole transaction; a rule's refusal is an answer
        let outcome = self
            .calls
            .run(async move {
                match changed.await {
                    Ok(ids) => Ok(Changed::Done(ids)),
                    Err(Abort::NoGroup) => Ok(Changed::NoGroup),
                    Err(Abort::Refused(e)) => Ok(Changed::Refused(e)),
                    Err(Abort::Db(e)) => Err(e),
                }
            })
            .await?;
        Ok(outcome)
    }

    /// A group that is not dissolved and its members (the longest-standing first), read together.
    pub async fn load(&self, id: u64) -> DaoResult<Option<(Group, Vec<GroupMember>)>> {
        let mut c = conn(&self.pool).await?;
        let loaded = c.transaction(async move |c| {
            let group: Option<Group> = groups::table
                .filter(groups::id.eq(id))
                .filter(groups::deleted_at.is_null())
                .select(Group::as_select())
                .first(c)
                .await
                .optional()?;
            match group {
                Some(g) => Ok::<_, diesel::result::Error>(Some((g, members_of(c, id).await?))),
                None => Ok(None),
            }
        });
        self.calls.run(loaded).await
    }

    /// The groups `user` is a member of (not dissolved), the newest first, with the user's row.
    pub async fn groups_of(&self, user: u64) -> DaoResult<Vec<(Group, GroupMember)>> {
        let mut c = conn(&self.pool).await?;
        let query = groups::table
            .inner_join(group_members::table)
            .filter(group_members::user_id.eq(user))
            .filter(groups::deleted_at.is_null())
            .order(groups::id.desc())
            .select((Group::as_select(), GroupMember::as_select()));
        self.calls.run(query.load(&mut c)).await
    }

    /// How many members each of `groups` has (active or pending).
    pub async fn member_counts(&self, ids: &[u64]) -> DaoResult<Vec<(u64, i64)>> {
        let mut c = conn(&self.pool).await?;
        let query = group_members::table
            .filter(group_members::group_id.eq_any(ids.to_vec()))
            .group_by(group_members::group_id)
            .select((group_members::group_id, diesel::dsl::count_star()));
        self.calls.run(query.load(&mut c)).await
    }

    /// Events not recorded yet, the oldest first (of one group, or of all).
    pub async fn pending_events(&self, group: Option<u64>, limit: i64) -> DaoResult<Vec<GroupEventRow>> {
        let mut c = conn(&self.pool).await?;
        let mut query = group_events::table
            .filter(group_events::recorded_seq.is_null())
            .order(group_events::id.asc())
            .limit(limit)
            .select(GroupEventRow::as_select())
            .into_boxed();
        if let Some(g) = group {
            query = query.filter(group_events::group_id.eq(g));
        }
        self.calls.run(query.load(&mut c)).await
    }

    /// An event was recorded at `seq`: marked so, and the members it let in (`joined`, pending)
    /// join at that seq, in one transaction.
    pub async fn mark_recorded(&self, event: u64, group: u64, seq: i64, joined: &[u64]) -> DaoResult<()> {
        let mut c = conn(&self.pool).await?;
        let joined = joined.to_vec();
        let marked = c.transaction(async move |c| {
            diesel::update(group_events::table.filter(group_events::id.eq(event)))
                .set(group_events::recorded_seq.eq(seq))
                .execute(c)
                .await?;
            if !joined.is_empty() {
                diesel::update(
                    group_members::table
                        .filter(group_members::group_id.eq(group))
                        .filter(group_members::user_id.eq_any(joined))
                        .filter(group_members::join_seq.eq(PENDING_JOIN)),
                )
                .set(group_members::join_seq.eq(seq))
                .execute(c)
                .await?;
            }
            Ok::<_, diesel::result::Error>(())
        });
        self.calls.run(marked).await
    }
}

async fn last_insert_id(c: &mut AsyncMysqlConnection) -> Result<u64, diesel::result::Error> {
    diesel::select(diesel::dsl::sql::<Unsigned<BigInt>>("LAST_INSERT_ID()")).get_result(c).await
}

async fn insert_event(
    c: &mut AsyncMysqlConnection,
    group: u64,
    actor: u64,
    event: &str,
) -> Result<u64, diesel::result::Error> {
    diesel::insert_into(group_events::table)
        .values((group_events::group_id.eq(group), group_events::actor.eq(actor), group_events::event.eq(event)))
        .execute(c)
        .await?;
    last_insert_id(c).await
}

async fn members_of(c: &mut AsyncMysqlConnection, id: u64) -> Result<Vec<GroupMember>, diesel::result::Error> {
    group_members::table
        .filter(group_members::group_id.eq(id))
        .order((group_members::joined_at.asc(), group_members::user_id.asc()))
        .select(GroupMember::as_select())
        .load(c)
        .await
}

/// One write, inside the change's transaction.
async fn apply(c: &mut AsyncMysqlConnection, group: &Group, w: &GroupWrite) -> Result<(), diesel::result::Error> {
    let id = group.id;
    let of = |u: u64| group_members::table.filter(group_members::group_id.eq(id)).filter(group_members::user_id.eq(u));
    match w {
        GroupWrite::Rename(name) => {
            diesel::update(groups::table.filter(groups::id.eq(id))).set(groups::name.eq(name)).execute(c).await?;
        }
        GroupWrite::Add(users) => {
            let rows: Vec<NewGroupMember> = users.iter().map(|&u| member_row(id, u, Role::Member)).collect();
            diesel::insert_or_ignore_into(group_members::table).values(&rows).execute(c).await?;
        }
        GroupWrite::Remove(user) => {
            diesel::delete(of(*user)).execute(c).await?;
        }
        GroupWrite::SetRole(user, role) => {
            diesel::update(of(*user)).set(group_members::role.eq(role.as_str())).execute(c).await?;
        }
        GroupWrite::SetOwner(to) => {
            diesel::update(of(group.owner)).set(group_members::role.eq(Role::Admin.as_str())).execute(c).await?;
            if diesel::update(of(*to)).set(group_members::role.eq(Role::Owner.as_str())).execute(c).await? != 1 {
                // the rules checked that `to` is a member, under the lock: this cannot happen
                return Err(diesel::result::Error::RollbackTransaction);
            }
            diesel::update(groups::table.filter(groups::id.eq(id))).set(groups::owner.eq(to)).execute(c).await?;
        }
        GroupWrite::Dissolve => {
            diesel::update(groups::table.filter(groups::id.eq(id)))
                .set(groups::deleted_at.eq(diesel::dsl::sql::<Nullable<Datetime>>("CURRENT_TIMESTAMP(3)")))
                .execute(c)
                .await?;
            diesel::delete(group_members::table.filter(group_members::group_id.eq(id))).execute(c).await?;
        }
    }
    Ok(())
}

fn member_row(group_id: u64, user_id: u64, role: Role) -> NewGroupMember {
    NewGroupMember { group_id, user_id, role: role.as_str().to_string(), join_seq: PENDING_JOIN }
}
