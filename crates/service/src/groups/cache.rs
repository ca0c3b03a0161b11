//! The in-process membership cache: who is in a group, with their roles and join seqs, as the
//! push path, the sends and the reads need it without asking MySQL each time.
//!
//! Loaded from MySQL on first use, and trusted for `group.cache_ttl_secs`; every membership
//! change made through this process invalidates its group at once. When a reload fails (MySQL
//! down), what was loaded before goes on serving (unless a change invalidated it): a MySQL
//! outage does not stop the chat in groups that were in use. Each group has a version:
//! an invalidation raises it, and a load that began under an older version is not kept, so a
//! load racing a change can never put back what the change removed (a general-purpose cache
//! such as moka would keep that stale load: its invalidation does not reach a load in flight).

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use chat_dao::GroupDao;
use chat_model::group::{Group, GroupMember};

use crate::error::{ServiceError, ServiceResult};

/// Groups kept at most; past it the expired ones are dropped.
const CAPACITY: usize = 100_000;

/// A group and its members, as loaded together.
#[derive(Debug)]
pub struct Membership {
    pub group: Group,
    /// The longest-standing first.
    pub members: Vec<GroupMember>,
    index: HashMap<u64, usize>,
}

impl Membership {
    pub fn new(group: Group, members: Vec<GroupMember>) -> Self {
        let index = members.iter().enumerate().map(|(i, m)| (m.user_id, i)).collect();
        Membership { group, members, index }
    }

    pub fn member(&self, user: u64) -> Option<&GroupMember> {
        self.index.get(&user).map(|&i| &self.members[i])
    }

    pub fn is_member(&self, user: u64) -> bool {
        self.index.contains_key(&user)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

#[derive(Default)]
struct Slot {
    version: u64,
    value: Option<(Arc<Membership>, Instant)>,
}

#[derive(Clone)]
pub struct GroupCache {
    dao: GroupDao,
    ttl: Duration,
    slots: Arc<RwLock<HashMap<u64, Slot>>>,
}

impl GroupCache {
    pub fn new(dao: GroupDao, ttl: Duration) -> Self {
        GroupCache { dao, ttl, slots: Arc::default() }
    }

    /// The group and its members: [`ServiceError::GroupNotFound`] when there is no such group
    /// or it was dissolved.
    pub async fn get(&self, id: u64) -> ServiceResult<Arc<Membership>> {
        let (version, stale) = {
            let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
            let slot = slots.get(&id);
            let value = slot.and_then(|s| s.value.as_ref());
            if let Some((m, at)) = value
                && at.elapsed() < self.ttl
            {
                return Ok(m.clone());
            }
            (slot.map_or(0, |s| s.version), value.map(|(m, _)| m.clone()))
        };
        let (group, members) = tokio::join!(self.dao.find(id), self.dao.members(id));
        let loaded = match (group, members) {
            (Ok(Some(group)), Ok(members)) => Arc::new(Membership::new(group, members)),
            (Ok(None), _) => return Err(ServiceError::GroupNotFound),
            (Err(e), _) | (_, Err(e)) => return stale.ok_or(ServiceError::Dao(e)),
        };
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        if slots.len() >= CAPACITY {
            let ttl = self.ttl;
            slots.retain(|_, s| s.value.as_ref().is_some_and(|(_, at)| at.elapsed() < ttl));
        }
        let slot = slots.entry(id).or_default();
        // a change since the load began: what was loaded may predate it; use it for this call
        // (it was read after the call began) but do not keep it
        if slot.version == version {
            slot.value = Some((loaded.clone(), Instant::now()));
        }
        Ok(loaded)
    }

    /// The group changed: the next [`Self::get`] loads it again, and no load begun before now
    /// is kept.
    pub fn invalidate(&self, id: u64) {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let slot = slots.entry(id).or_default();
        slot.version += 1;
        slot.value = None;
    }
}
