//! One committer: the loop over its queue, and the phases of a commit around the insert.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use bson::{DateTime, oid::ObjectId};
use chat_dao::SummaryUpdate;
use chat_model::{ChatMessage, MessageDoc, MessageKind, ReplyCode, ServerFrame, Target};
use slog::{Logger, o, warn};
use tokio::sync::{Mutex, mpsc};

use super::{Answer, Deps, Job, Stored, insert, state::ConvStates};
use crate::{
    chat::expiry,
    cluster::{Audience, Push},
    error::ServiceError,
    groups::Membership,
    reads::{ReadMark, Seen},
    workers::Stop,
};

/// The slowest retry of a summary write that failed.
const SUMMARY_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A send on its way to the store.
pub(super) struct Pending {
    pub job: Job,
    pub doc: MessageDoc,
}

pub(super) type Answers = Vec<(Job, Answer)>;

pub(super) struct Worker {
    pub d: Deps,
    pub states: ConvStates,
    pub log: Logger,
}

/// Runs a committer until `stop`; then stores what is still queued and returns.
pub(super) async fn run(deps: Deps, shard: usize, rx: Arc<Mutex<mpsc::Receiver<Job>>>, batch: usize, stop: Stop) {
    let mut rx = rx.lock().await;
    let queue = format!("{}{shard}", super::WORKER);
    let log = deps.log.new(o!("shard" => shard));
    let mut w = Worker { d: deps, states: ConvStates::default(), log };
    let mut jobs = Vec::with_capacity(batch);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            n = rx.recv_many(&mut jobs, batch) => {
                if n == 0 {
                    return;
                }
                w.d.metrics.queue(&queue, rx.len());
                w.commit(std::mem::take(&mut jobs)).await;
            }
        }
    }
    // stopping: nothing new gets in; what is queued is stored and answered
    rx.close();
    while rx.recv_many(&mut jobs, batch).await > 0 {
        w.commit(std::mem::take(&mut jobs)).await;
    }
    w.d.metrics.queue(&queue, 0);
}

impl Worker {
    async fn commit(&mut self, jobs: Vec<Job>) {
        self.d.metrics.batch_size.observe(jobs.len() as f64);
        // a resend inside the batch waits for the first send of its (sender, client_msg_id)
        let mut seen = HashSet::new();
        let mut followers: HashMap<(i64, String), Vec<Job>> = HashMap::new();
        let mut firsts = Vec::with_capacity(jobs.len());
        for job in jobs {
            match &job.client_msg_id {
                Some(cmid) if !seen.insert((job.from, cmid.clone())) => {
                    followers.entry((job.from, cmid.clone())).or_default().push(job)
                }
                _ => firsts.push(job),
            }
        }
        for (job, answer) in self.store_batch(firsts).await {
            let key = job.client_msg_id.clone().map(|c| (job.from, c));
            if let Some(rest) = key.and_then(|k| followers.remove(&k)) {
                for f in rest {
                    let copy = match &answer {
                        Ok(Stored::New(doc, _) | Stored::Existing(doc)) => Ok(Stored::Existing(doc.clone())),
                        Err(e) => Err(e.shared()),
                    };
                    let _ = f.reply.send(copy);
                }
            }
            let _ = job.reply.send(answer);
        }
    }

    async fn store_batch(&mut self, jobs: Vec<Job>) -> Answers {
        let mut answers = Vec::with_capacity(jobs.len());
        // 0. in a group, only a member may send (checked as it is stored: a member removed while
        // the send waited is refused)
        let jobs = self.members_only(jobs, &mut answers).await;
        // 1. the conversations' states; one that cannot be loaded fails only its own sends
        let convs: Vec<String> = jobs.iter().map(conv_of).collect();
        let failed = self.states.load(convs.iter().map(String::as_str), &self.d).await;
        let mut known = Vec::with_capacity(jobs.len());
        for job in jobs {
            match failed.get(&conv_of(&job)) {
                Some(e) => answers.push((job, Err(ServiceError::Dao(e.shared())))),
                None => known.push(job),
            }
        }
        // 2. the no-reply limit
        let pending = self.limit(known, &mut answers).await;
        // 3. seqs and the insert, settled
        let stored = insert::store(self, pending, &mut answers).await;
        for p in stored.iter().filter(|p| p.doc.group_id.is_none()) {
            self.states.stored(&p.doc.conv, p.doc.from);
        }
        // 4. the summaries, of the stored messages and of resends of stored ones
        let mut docs: Vec<&MessageDoc> = stored.iter().map(|p| &p.doc).collect();
        docs.extend(answers.iter().filter_map(|(_, a)| match a {
            Ok(Stored::Existing(d)) => Some(d),
            _ => None,
        }));
        self.record(&docs).await;
        // 5. pushed in seq order (here and to the other nodes, all at once), then answered; the
        // senders' read flags follow their positions
        let groups = self.memberships(&stored).await;
        let mut pushes = Vec::with_capacity(stored.len());
        for p in &stored {
            match (p.job.target, p.doc.to) {
                (Target::User(_), Some(to)) => {
                    self.d.marks.mark(ReadMark {
                        conv: p.doc.conv.as_str().into(),
                        reader: p.doc.from,
                        with: Target::User(to as u64),
                        seq: p.doc.seq,
                        seen: Seen::Sent,
                    });
                    pushes.push(direct_push(&p.doc, p.job.conn_id));
                }
                (Target::Group(g), _) => pushes.push(group_push(g, groups.get(&g), &p.doc, p.job.conn_id)),
                (Target::User(_), None) => pushes.push(Push::event("", Vec::new())),
            }
        }
        let delivered = self.d.delivery.push(&pushes).await;
        for (p, delivered) in stored.into_iter().zip(delivered) {
            answers.push((p.job, Ok(Stored::New(p.doc, delivered))));
        }
        answers
    }

    /// The sends to groups whose sender is not a member are refused (system messages are the
    /// server's own).
    async fn members_only(&self, jobs: Vec<Job>, answers: &mut Answers) -> Vec<Job> {
        let ids: HashSet<u64> = jobs.iter().filter(|j| j.event.is_none()).filter_map(|j| j.target.group()).collect();
        if ids.is_empty() {
            return jobs;
        }
        let groups = self.groups(ids).await;
        let mut kept = Vec::with_capacity(jobs.len());
        for job in jobs {
            let verdict = match (job.target, &job.event) {
                (Target::Group(g), None) => match groups.get(&g) {
                    Some(Ok(m)) if m.is_member(job.from as u64) => Ok(()),
                    Some(Ok(_)) => Err(ServiceError::NotMember),
                    Some(Err(e)) => Err(e.shared()),
                    None => Err(ServiceError::GroupNotFound),
                },
                _ => Ok(()),
            };
            match verdict {
                Ok(()) => kept.push(job),
                Err(e) => answers.push((job, Err(e))),
            }
        }
        kept
    }

    /// The members of the groups the stored messages went to (a group whose members cannot
    /// be loaded is pushed to nobody but whom its change names: its messages are stored, its
    /// members catch up).
    async fn memberships(&self, stored: &[Pending]) -> HashMap<u64, Arc<Membership>> {
        let ids: HashSet<u64> = stored.iter().filter_map(|p| p.job.target.group()).collect();
        let mut out = HashMap::new();
        for (g, m) in self.groups(ids).await {
            match m {
                Ok(m) => {
                    out.insert(g, m);
                }
                Err(ServiceError::GroupNotFound) => {}
                Err(e) => {
                    warn!(self.log, "group members not loaded; its messages wait for catch-up"; "group_id" => g, "error" => %e)
                }
            }
        }
        out
    }

    /// Groups from the membership cache's memory (refreshed in the background when old); only
    /// a group it does not hold at all (evicted, or just changed) is loaded here. A sender's
    /// connection loads its group before the send is submitted, so that is rare.
    async fn groups(&self, ids: HashSet<u64>) -> HashMap<u64, Result<Arc<Membership>, ServiceError>> {
        let mut out = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for g in ids {
            match self.d.groups.peek(g) {
                Some(m) => {
                    out.insert(g, Ok(m));
                }
                None => missing.push(g),
            }
        }
        let loads = missing.into_iter().map(|g| async move { (g, self.d.groups.get(g).await) });
        out.extend(futures_util::future::join_all(loads).await);
        out
    }

    /// The no-reply limit: a send to a peer who has never sent in the conversation is allowed
    /// while the sender has fewer than `no_reply_limit` messages stored in it (counted from the
    /// store, not from counters: nothing to lose, nothing to give back). A refusal is checked
    /// again before it is answered: the conversation is loaded afresh (another process may have
    /// stored the peer's answer), and a resend of a stored message (which counted in the batch
    /// although it stores nothing) gets its first reply instead.
    async fn limit(&mut self, jobs: Vec<Job>, answers: &mut Answers) -> Vec<Pending> {
        let mut jobs = jobs;
        let mut refused = self.refusals(&jobs);
        if refused.iter().any(|r| *r) {
            let convs: HashSet<String> =
                jobs.iter().zip(&refused).filter(|(_, r)| **r).map(|(j, _)| conv_of(j)).collect();
            for conv in &convs {
                self.states.forget(conv);
            }
            let failed = self.states.load(convs.iter().map(String::as_str), &self.d).await;
            let wanted: Vec<(i64, String)> = jobs
                .iter()
                .filter(|j| convs.contains(&conv_of(j)))
                .filter_map(|j| j.client_msg_id.clone().map(|c| (j.from, c)))
                .collect();
            let found = self.d.messages.find_by_client_msg_ids(&wanted).await.unwrap_or_default();
            let first: HashMap<(i64, &str), &MessageDoc> =
                found.iter().filter_map(|d| Some(((d.from, d.client_msg_id.as_deref()?), d))).collect();
            let mut kept = Vec::with_capacity(jobs.len());
            for job in jobs {
                let conv = conv_of(&job);
                if let Some(e) = failed.get(&conv) {
                    answers.push((job, Err(ServiceError::Dao(e.shared()))));
                    continue;
                }
                match job.client_msg_id.as_deref().and_then(|c| first.get(&(job.from, c))) {
                    Some(doc) => {
                        let doc = (*doc).clone();
                        answers.push((job, Ok(Stored::Existing(doc))));
                    }
                    None => kept.push(job),
                }
            }
            jobs = kept;
            refused = self.refusals(&jobs);
        }
        let mut pending = Vec::with_capacity(jobs.len());
        for (job, refused) in jobs.into_iter().zip(refused) {
            if refused {
                let limit = self.d.settings.no_reply_limit;
                answers.push((job, Err(ServiceError::NoReplyLimit { limit })));
            } else {
                let doc = self.new_doc(&job);
                pending.push(Pending { job, doc });
            }
        }
        pending
    }

    /// Which of `jobs`, taken in order, the no-reply limit refuses: each allowed send counts
    /// (and makes its sender one who has sent) for the sends after it.
    fn refusals(&self, jobs: &[Job]) -> Vec<bool> {
        let limit = u64::from(self.d.settings.no_reply_limit);
        let mut convs: HashMap<String, super::state::Conv> = HashMap::new();
        jobs.iter()
            .map(|job| {
                // no limit in groups
                let Target::User(to) = job.target else { return false };
                let c = convs.entry(conv_of(job)).or_insert_with_key(|conv| self.states.get(conv));
                if c.senders.contains(&(to as i64)) {
                    return false;
                }
                let n = c.stored.entry(job.from).or_default();
                if *n >= limit {
                    return true;
                }
                *n += 1;
                if !c.senders.contains(&job.from) {
                    c.senders.push(job.from);
                }
                false
            })
            .collect()
    }

    /// The message as it is stored: unread until a connection of its recipient has it.
    fn new_doc(&self, job: &Job) -> MessageDoc {
        let now = DateTime::now();
        let (to, group_id) = match job.target {
            Target::User(to) => (Some(to as i64), None),
            Target::Group(g) => (None, Some(g as i64)),
        };
        MessageDoc {
            id: ObjectId::new(),
            conv: conv_of(job),
            seq: 0,
            from: job.from,
            to,
            group_id,
            kind: job.event.as_ref().map(|_| MessageKind::System),
            event: job.event.clone(),
            content: job.content.clone(),
            created_at: now,
            expire_at: expiry(now, self.d.settings.retention_secs),
            // a group message has many readers: its read state is their positions; stored
            // true, it stays out of the unread index (which holds unread direct messages)
            read: group_id.is_some(),
            client_msg_id: job.client_msg_id.clone(),
        }
    }

    /// Writes the summaries of the batch's conversations, trying again until the write is
    /// acknowledged: nobody is answered before their conversation is recorded (the seq floor
    /// after expiry, the conversation list and the answered flag depend on it).
    async fn record(&mut self, docs: &[&MessageDoc]) {
        let mut by_conv: HashMap<&str, SummaryUpdate> = HashMap::new();
        for d in docs {
            let u = by_conv.entry(&d.conv).or_insert_with(|| SummaryUpdate {
                conv: d.conv.clone(),
                // a group's conversation is listed through its members (MySQL), not its users
                users: d.to.map(|to| [d.from.min(to), d.from.max(to)]),
                seq: d.seq,
                at: d.created_at,
                senders: Vec::new(),
            });
            u.seq = u.seq.max(d.seq);
            u.at = u.at.max(d.created_at);
            // who has sent lifts the no-reply limit: direct conversations only
            if d.to.is_some() && !u.senders.contains(&d.from) {
                u.senders.push(d.from);
            }
        }
        let updates: Vec<SummaryUpdate> = by_conv.into_values().collect();
        let mut backoff = Duration::from_millis(50);
        let mut failures = 0u32;
        while let Err(e) = self.d.conversations.record(&updates).await {
            failures += 1;
            if failures == 1 || failures.is_multiple_of(20) {
                warn!(self.log, "conversation summaries not written yet; trying again"; "count" => updates.len(), "attempts" => failures, "error" => %e);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(SUMMARY_BACKOFF_MAX);
        }
    }
}

/// A stored direct message, for the live connections of its conversation: the recipient's (whose
/// taking it is the delivery) and the sender's others (not `conn_id`, which gets the reply).
fn direct_push(doc: &MessageDoc, conn_id: Option<u64>) -> Push {
    let (from, to) = (doc.from as u64, doc.to.unwrap_or_default() as u64);
    let mut audiences = vec![Audience { reads: true, ..Audience::of(vec![to], Some(Target::User(from))) }];
    if from != to {
        audiences.push(Audience { counts: false, skip: conn_id, ..Audience::of(vec![from], Some(Target::User(to))) });
    }
    Push { text: message_frame(doc), seq: Some((doc.conv.as_str().into(), doc.seq)), to: audiences }
}

/// A stored group message, for the live connections of the members who see it (joined at or
/// before it) and of the users its change is about (an added or removed member hears of it);
/// delivered when another member's connection took it. A group read position moves by
/// receipts and unread pages, never by a push.
fn group_push(group: u64, members: Option<&Arc<Membership>>, doc: &MessageDoc, conn_id: Option<u64>) -> Push {
    let sender = doc.from as u64;
    let seen = members.into_iter().flat_map(|m| m.members.iter()).filter(|m| m.join_seq <= doc.seq).map(|m| m.user_id);
    let told = doc
        .event
        .iter()
        .flat_map(|e| e.users.iter())
        .filter_map(|&u| u64::try_from(u).ok())
        .filter(|&u| members.is_none_or(|m| m.member(u).is_none_or(|m| m.join_seq > doc.seq)));
    let mut others: Vec<u64> = seen.chain(told).filter(|&u| u != sender).collect();
    others.sort_unstable();
    others.dedup();
    let about = Some(Target::Group(group));
    Push {
        text: message_frame(doc),
        seq: Some((doc.conv.as_str().into(), doc.seq)),
        to: vec![
            Audience::of(others, about),
            Audience { counts: false, skip: conn_id, ..Audience::of(vec![sender], about) },
        ],
    }
}

fn message_frame(doc: &MessageDoc) -> Arc<str> {
    ServerFrame::new(ReplyCode::Incoming, "new message").with_message(ChatMessage::from(doc)).to_json().into()
}

fn conv_of(job: &Job) -> String {
    job.target.conv(job.from as u64)
}
