//! What connections hear besides messages: read receipts (50010), typing (50011) and presence
//! (50012), on every node. Nothing here is stored but read positions.

use std::time::Duration;

use chat_model::{ServerFrame, Target};
use futures_util::StreamExt as _;
use slog::{info, warn};

use crate::{
    chat::{ChatService, to_i64},
    cluster::{Audience, Push},
    conversation::MAX_CONVERSATIONS,
    error::{ServiceError, ServiceResult},
    reads::{ReadMark, Seen},
    workers::Stop,
};

impl ChatService {
    /// A read receipt: `user` has seen the conversation up to `read_seq`. Moves the user's read
    /// position there (never backwards, at most the last seq), marks the messages to the user
    /// up to it read (a direct conversation's), and tells the user's other connections (not
    /// `conn_id`, which gets the reply) and, in a direct conversation, the peer's. Returns the
    /// position (0 when nothing was ever sent). In a group, only a member may.
    pub async fn read(&self, user: u64, target: Target, read_seq: i64, conn_id: Option<u64>) -> ServiceResult<i64> {
        self.visible_after(user, target).await?;
        let mark = ReadMark {
            conv: target.conv(user).into(),
            reader: to_i64(user)?,
            with: target,
            seq: read_seq,
            seen: Seen::UpTo,
        };
        Ok(self.reads.apply(&mark, conn_id).await?.unwrap_or(0))
    }

    /// `user` is typing in the conversation (a peer the connection checked,
    /// [`Self::check_peer`], or a group the user is a member of): the peer's connections (the
    /// other members' who are online) hear of it, at most once per
    /// [`crate::limits::TYPING_EVERY`] per conversation (the rest are dropped). Nothing is
    /// stored; in a group the membership cache is asked.
    pub async fn typing(&self, user: u64, target: Target) -> ServiceResult<()> {
        match target {
            Target::User(peer) if peer == user => Err(ServiceError::SelfChat),
            Target::User(peer) => {
                if self.limits.typing(user, target) {
                    let frame = ServerFrame::typing(&target.conv(user), None, user).to_json();
                    let to = Audience::of(vec![peer], Some(Target::User(user)));
                    self.push_later(Push::event(frame, vec![to]));
                }
                Ok(())
            }
            Target::Group(g) => {
                let group = self.groups.get(g).await?;
                if !group.is_member(user) {
                    return Err(ServiceError::NotMember);
                }
                if self.limits.typing(user, target) {
                    let frame = ServerFrame::typing(&target.conv(user), Some(g), user).to_json();
                    let others = group.members.iter().map(|m| m.user_id).filter(|&m| m != user).collect();
                    self.push_later(Push::event(frame, vec![Audience::of(others, Some(target))]));
                }
                Ok(())
            }
        }
    }

    /// Pushes an event in the background: a slow Redis must not hold up the connection's
    /// replies (typing gets none; the frames after it do).
    fn push_later(&self, push: Push) {
        let delivery = self.delivery.clone();
        tokio::spawn(async move { delivery.push(&[push]).await });
    }

    /// Tells the device connections of everyone `user` has a conversation with that the user
    /// came online or went offline (in the background: nobody waits for it). The state is read
    /// again just before the event goes out, so that of two quick changes (a reload: offline,
    /// then online) whichever task goes out last tells the truth.
    pub(crate) fn announce(&self, user: u64, online: bool) {
        let chat = self.clone();
        tokio::spawn(async move { chat.announce_now(user, online).await });
    }

    async fn announce_now(&self, user: u64, online: bool) {
        let Ok(me) = i64::try_from(user) else { return };
        let summaries = match self.conversations.list_for(me, MAX_CONVERSATIONS).await {
            Ok(s) => s,
            Err(e) => {
                warn!(self.log, "presence not announced"; "user_id" => user, "error" => %e);
                return;
            }
        };
        let online = self.presence.live_connections(user).await.map(|n| n > 0).unwrap_or(online);
        let frame = ServerFrame::presence(user, online).to_json();
        let mut peers: Vec<u64> =
            summaries.iter().flat_map(|s| s.users.iter()).filter(|&&u| u != me).map(|&u| u as u64).collect();
        peers.sort_unstable();
        peers.dedup();
        self.delivery.push(&[Push::event(frame, vec![Audience::of(peers, None)])]).await;
    }

    /// The worker that notices nodes that crashed: every `every`, each node whose lease lapsed
    /// is claimed (by one node of those still running), and its users who have no connection
    /// left anywhere are announced offline to their peers.
    pub(crate) async fn sweep_lapsed_nodes(self, every: Duration, stop: Stop) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => self.sweep().await,
            }
        }
    }

    async fn sweep(&self) {
        let Ok(nodes) = self.presence.lapsed_nodes().await else { return };
        for node in nodes {
            let users = match self.presence.claim_lapsed(&node).await {
                Ok(Some(users)) => users,
                Ok(None) => continue,
                Err(e) => {
                    warn!(self.log, "a lapsed node not claimed"; "node" => &node, "error" => %e);
                    continue;
                }
            };
            info!(self.log, "a node's lease lapsed; telling its users' peers who went offline"; "node" => &node, "users" => users.len());
            let mut gone = Vec::new();
            for chunk in users.chunks(SWEEP_CHUNK) {
                match self.presence.online_among(chunk).await {
                    Ok(online) => gone.extend(chunk.iter().filter(|u| !online.contains(u))),
                    Err(e) => warn!(self.log, "presence of a lapsed node's users not read"; "error" => %e),
                }
            }
            futures_util::stream::iter(gone)
                .for_each_concurrent(SWEEP_ANNOUNCING, |u| self.announce_now(u, false))
                .await;
        }
    }
}

/// Users whose presence is read at once by the sweep.
const SWEEP_CHUNK: usize = 1000;
/// Offline announcements the sweep makes at once.
const SWEEP_ANNOUNCING: usize = 16;
