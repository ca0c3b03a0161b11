//! The node's heartbeat: one worker per process, every `ping_interval_secs`, refreshes the
//! presence of all its connections in one pipeline, checks all their sessions (one cache read,
//! MySQL for what the cache does not hold) and their accounts (one MySQL query), and closes the
//! connections whose session ended or whose account may no longer be used. The sessions' own
//! loops never wait for a store, so a slow Redis stalls no socket.
//!
//! A store that fails a check keeps every connection open: the next round checks again.

use std::{collections::HashSet, sync::Arc, time::Duration};

use chat_dao::{PresenceDao, SessionDao, UserDao};
use slog::{Logger, debug, info, warn};

use crate::{chat::presence_id, hub::Hub, limits::Limits, workers::Stop};

/// Sessions or users checked per store call.
const CHUNK: usize = 1000;
/// How often the janitor deletes expired sessions and forgets idle rate limiters.
const JANITOR_EVERY: Duration = Duration::from_secs(600);

/// The node's lease: renewed every third of its ttl; a node that stops (gracefully) ends it,
/// one that crashes lets it lapse. While it is there, other nodes count this node's connections.
#[derive(Clone)]
pub(crate) struct Lease {
    pub presence: PresenceDao,
    pub label: String,
    pub ttl: Duration,
    pub log: Logger,
}

impl Lease {
    pub(crate) async fn run(self, stop: Stop) {
        let mut tick = tokio::time::interval((self.ttl / 3).max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => match self.presence.renew_lease(&self.label, ttl_ms).await {
                    Ok(()) if failing => {
                        failing = false;
                        info!(self.log, "lease renewed again");
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        failing = true;
                        warn!(self.log, "lease not renewed; other nodes will see this node's connections gone"; "error" => %e);
                    }
                    Err(_) => {}
                },
            }
        }
        if let Err(e) = self.presence.release_lease().await {
            debug!(self.log, "lease not released; it lapses"; "error" => %e);
        }
    }
}

#[derive(Clone)]
pub(crate) struct Heartbeat {
    pub hub: Arc<Hub>,
    pub presence: PresenceDao,
    pub sessions: SessionDao,
    pub users: UserDao,
    pub node: Arc<str>,
    pub interval: Duration,
    pub presence_ttl_secs: u64,
    pub log: Logger,
}

impl Heartbeat {
    pub(crate) async fn run(self, stop: Stop) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => self.beat().await,
            }
        }
    }

    /// One round over every connection of this process.
    pub(crate) async fn beat(&self) {
        let conns = self.hub.snapshot();
        if conns.is_empty() {
            return;
        }
        let ids: Vec<(u64, String)> = conns.iter().map(|c| (c.user, presence_id(&self.node, c.conn_id))).collect();
        let refs: Vec<(u64, &str)> = ids.iter().map(|(u, p)| (*u, p.as_str())).collect();
        if let Err(e) = self.presence.refresh_many(&refs, self.presence_ttl_secs).await {
            warn!(self.log, "presence not refreshed"; "connections" => conns.len(), "error" => %e);
        }
        // a connection that closed meanwhile was just listed again: take it out at once
        let live: HashSet<u64> = self.hub.snapshot().iter().map(|c| c.conn_id).collect();
        for (c, (_, id)) in conns.iter().zip(&ids).filter(|(c, _)| !live.contains(&c.conn_id)) {
            let _ = self.presence.remove(c.user, id).await;
        }
        let sessions: HashSet<&str> = conns.iter().map(|c| &*c.session).collect();
        let sessions: Vec<&str> = sessions.into_iter().collect();
        let mut ended = 0;
        for chunk in sessions.chunks(CHUNK) {
            match self.sessions.alive(chunk).await {
                Ok(alive) => {
                    for s in chunk.iter().filter(|s| !alive.contains(**s)) {
                        ended += self.hub.kick_session(s);
                    }
                }
                Err(e) => warn!(self.log, "sessions not checked"; "count" => chunk.len(), "error" => %e),
            }
        }
        let users: HashSet<u64> = conns.iter().map(|c| c.user).collect();
        let users: Vec<u64> = users.into_iter().collect();
        let mut disabled = 0;
        for chunk in users.chunks(CHUNK) {
            match self.users.active_among(chunk).await {
                Ok(active) => {
                    let active: HashSet<u64> = active.into_iter().collect();
                    for u in chunk.iter().filter(|u| !active.contains(u)) {
                        disabled += self.hub.kick_user(*u);
                    }
                }
                Err(e) => warn!(self.log, "accounts not checked"; "count" => chunk.len(), "error" => %e),
            }
        }
        if ended + disabled > 0 {
            info!(self.log, "connections closed by the heartbeat"; "session_ended" => ended, "account_unusable" => disabled);
        }
        debug!(self.log, "heartbeat"; "connections" => conns.len());
    }
}

/// Deletes expired sessions and forgets the rate limiters of users who went quiet, now and then.
pub(crate) async fn janitor(sessions: SessionDao, limits: Limits, log: Logger, stop: Stop) {
    let mut tick = tokio::time::interval(JANITOR_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        limits.forget_idle();
        let mut deleted = 0;
        loop {
            match sessions.delete_expired(1000).await {
                Ok(0) => break,
                Ok(n) => deleted += n,
                Err(e) => {
                    warn!(log, "expired sessions not deleted"; "error" => %e);
                    break;
                }
            }
        }
        if deleted > 0 {
            info!(log, "expired sessions deleted"; "count" => deleted);
        }
    }
}
