//! The in-process membership cache: who is in a group, with their roles and join seqs, as the
//! push path, the sends and the reads need it without asking MySQL each time.
//!
//! Loaded from MySQL on first use (the group and its members in one read), and trusted for
//! `group.cache_ttl_secs`; every membership change made through this process invalidates its
//! group at once. An invalidation takes a version from one counter: a load that began before it
//! is never kept, so a load racing a change cannot put back what the change removed (a
//! general-purpose cache such as moka would keep that stale load: its invalidation does not
//! reach a load in flight). When a reload fails (MySQL down), what was loaded before goes on
//! serving, unless a change invalidated it.
//!
//! The committers never wait for MySQL here: they [`GroupCache::peek`], which answers from
//! memory and refreshes an expired group in the background, one load at a time per group.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
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
    /// Every row, the longest-standing first: members, and those whose joining is pending.
    pub members: Vec<GroupMember>,
    index: HashMap<u64, usize>,
    active: usize,
}

impl Membership {
    pub fn new(group: Group, members: Vec<GroupMember>) -> Self {
        let index = members.iter().enumerate().map(|(i, m)| (m.user_id, i)).collect();
        let active = members.iter().filter(|m| m.is_active()).count();
        Membership { group, members, index, active }
    }

    /// `user` as a member (their joining recorded).
    pub fn member(&self, user: u64) -> Option<&GroupMember> {
        self.row(user).filter(|m| m.is_active())
    }

    /// `user`'s row, pending or not.
    pub fn row(&self, user: u64) -> Option<&GroupMember> {
        self.index.get(&user).map(|&i| &self.members[i])
    }

    pub fn is_member(&self, user: u64) -> bool {
        self.member(user).is_some()
    }

    /// Members (joining recorded).
    pub fn len(&self) -> usize {
        self.active
    }

    pub fn is_empty(&self) -> bool {
        self.active == 0
    }
}

#[derive(Default)]
struct Slot {
    version: u64,
    value: Option<(Arc<Membership>, Instant)>,
    refreshing: bool,
}

#[derive(Clone)]
pub struct GroupCache {
    dao: GroupDao,
    ttl: Duration,
    slots: Arc<RwLock<HashMap<u64, Slot>>>,
    versions: Arc<AtomicU64>,
}

impl GroupCache {
    pub fn new(dao: GroupDao, ttl: Duration) -> Self {
        GroupCache { dao, ttl, slots: Arc::default(), versions: Arc::new(AtomicU64::new(1)) }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<u64, Slot>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u64, Slot>> {
        self.slots.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The group and its members: [`ServiceError::GroupNotFound`] when there is no such group
    /// or it was dissolved.
    pub async fn get(&self, id: u64) -> ServiceResult<Arc<Membership>> {
        let (version, stale) = {
            let slots = self.read();
            let slot = slots.get(&id);
            let value = slot.and_then(|s| s.value.as_ref());
            if let Some((m, at)) = value
                && at.elapsed() < self.ttl
            {
                return Ok(m.clone());
            }
            (slot.map_or(0, |s| s.version), value.map(|(m, _)| m.clone()))
        };
        self.load(id, version, stale).await
    }

    /// What is in memory for the group, even past its ttl (then a reload starts in the
    /// background); None when nothing is (the caller may [`Self::get`]). Never waits.
    pub fn peek(&self, id: u64) -> Option<Arc<Membership>> {
        let (m, expired, version) = {
            let slots = self.read();
            let slot = slots.get(&id)?;
            let (m, at) = slot.value.as_ref()?;
            (m.clone(), at.elapsed() >= self.ttl && !slot.refreshing, slot.version)
        };
        if expired {
            let started = {
                let mut slots = self.write();
                let slot = slots.entry(id).or_default();
                let start = !slot.refreshing && slot.version == version;
                slot.refreshing |= start;
                start
            };
            if started {
                let (cache, stale) = (self.clone(), m.clone());
                tokio::spawn(async move {
                    let _ = cache.load(id, version, Some(stale)).await;
                    if let Some(slot) = cache.write().get_mut(&id) {
                        slot.refreshing = false;
                    }
                });
            }
        }
        Some(m)
    }

    /// Loads the group; keeps it unless a change came since `version` was read.
    async fn load(&self, id: u64, version: u64, stale: Option<Arc<Membership>>) -> ServiceResult<Arc<Membership>> {
        let loaded = match self.dao.load(id).await {
            Ok(Some((group, members))) => Arc::new(Membership::new(group, members)),
            Ok(None) => {
                // dissolved: nothing of it may serve again
                if let Some(slot) = self.write().get_mut(&id) {
                    slot.value = None;
                }
                return Err(ServiceError::GroupNotFound);
            }
            Err(e) => {
                // MySQL down: what was loaded serves on, tried again after a short while
                let Some(stale) = stale else { return Err(ServiceError::Dao(e)) };
                let mut slots = self.write();
                if let Some(slot) = slots.get_mut(&id)
                    && slot.version == version
                {
                    let retry_at = Instant::now().checked_sub(self.ttl.saturating_sub(Duration::from_secs(1)));
                    slot.value = Some((stale.clone(), retry_at.unwrap_or_else(Instant::now)));
                }
                return Ok(stale);
            }
        };
        let mut slots = self.write();
        if slots.len() >= CAPACITY {
            let ttl = self.ttl;
            // an invalidated slot stays (a few bytes): its version must outlive the loads begun
            // before it
            slots.retain(|_, s| s.value.as_ref().is_none_or(|(_, at)| at.elapsed() < ttl));
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
        let version = self.versions.fetch_add(1, Ordering::Relaxed) + 1;
        let mut slots = self.write();
        let slot = slots.entry(id).or_default();
        slot.version = version;
        slot.value = None;
    }

    /// Every group may have changed (their changes could not be heard): each is loaded again.
    pub fn invalidate_all(&self) {
        let version = self.versions.fetch_add(1, Ordering::Relaxed) + 1;
        for slot in self.write().values_mut() {
            slot.version = version;
            slot.value = None;
        }
    }
}
