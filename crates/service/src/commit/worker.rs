//! One committer: the loop over its queue, and the phases of a commit around the insert.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use bson::{DateTime, oid::ObjectId};
use chat_dao::{LimitOutcome, SummaryUpdate};
use chat_model::{ChatMessage, MessageDoc, ReplyCode, ServerFrame, conversation_id};
use slog::{Logger, o, warn};
use tokio::sync::{Mutex, mpsc};

use super::{Answer, Deps, Job, Stored, insert, state::ConvStates};
use crate::{chat::expiry, error::ServiceError, hub::Outbound, workers::Stop};

/// The slowest retry of a summary write that failed.
const SUMMARY_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A send on its way to the store.
pub(super) struct Pending {
    pub job: Job,
    pub doc: MessageDoc,
    /// Its no-reply count was taken (to be given back if it is not stored).
    pub counted: bool,
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

/// How the no-reply limit saw a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// The peer has answered: not counted.
    Free,
    Counted,
    Refused,
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
        // 4. the summaries, of the stored messages and of resends of stored ones
        let mut docs: Vec<&MessageDoc> = stored.iter().map(|p| &p.doc).collect();
        docs.extend(answers.iter().filter_map(|(_, a)| match a {
            Ok(Stored::Existing(d)) => Some(d),
            _ => None,
        }));
        self.record(&docs).await;
        // 5. pushed in seq order, then answered
        for p in stored {
            let delivered = self.push(&p.doc, p.job.conn_id);
            answers.push((p.job, Ok(Stored::New(p.doc, delivered))));
        }
        answers
    }

    /// Counts the sends to a peer who has not answered (the conversation's senders, as this
    /// committer knows them, and the batch's earlier sends); the others are free.
    async fn limit(&mut self, jobs: Vec<Job>, answers: &mut Answers) -> Vec<Pending> {
        let mut senders: HashMap<String, Vec<i64>> = HashMap::new();
        let mut items: Vec<(Job, Limit)> = Vec::with_capacity(jobs.len());
        let mut checked = Vec::new();
        for job in jobs {
            let s = senders.entry(conv_of(&job)).or_insert_with_key(|c| self.states.senders(c));
            if !s.contains(&job.to) {
                checked.push(items.len());
            }
            if !s.contains(&job.from) {
                s.push(job.from);
            }
            items.push((job, Limit::Free));
        }
        if !checked.is_empty() {
            let sends: Vec<(u64, u64)> =
                checked.iter().map(|&i| (items[i].0.from as u64, items[i].0.to as u64)).collect();
            let (limit, ttl) = (self.d.settings.no_reply_limit, self.d.settings.no_reply_ttl_secs);
            match self.d.limit.check_and_count_many(&sends, limit, ttl).await {
                Ok(outcomes) => {
                    for (&i, o) in checked.iter().zip(outcomes) {
                        items[i].1 = if o == LimitOutcome::Refused { Limit::Refused } else { Limit::Counted };
                    }
                }
                Err(e) => {
                    // the limit cannot be checked: those sends fail; the free ones go on
                    let checked: HashSet<usize> = checked.into_iter().collect();
                    let mut kept = Vec::with_capacity(items.len());
                    for (i, item) in items.into_iter().enumerate() {
                        if checked.contains(&i) {
                            answers.push((item.0, Err(ServiceError::Dao(e.shared()))));
                        } else {
                            kept.push(item);
                        }
                    }
                    items = kept;
                }
            }
        }
        if items.iter().any(|(_, l)| *l == Limit::Refused) {
            items = self.recheck_refused(items, answers).await;
        }
        let mut pending = Vec::with_capacity(items.len());
        for (job, limit) in items {
            match limit {
                Limit::Refused => {
                    let refused = Err(ServiceError::NoReplyLimit { limit: self.d.settings.no_reply_limit });
                    answers.push((job, refused));
                }
                Limit::Free | Limit::Counted => {
                    let doc = self.new_doc(&job);
                    pending.push(Pending { job, doc, counted: limit == Limit::Counted });
                }
            }
        }
        pending
    }

    /// A refusal is checked again before it is answered: the peer may have answered through
    /// another process (the summary says so even when Redis has forgotten it); and a resend of
    /// a stored message, counted again, may be what pushed a send over (it gets its first
    /// reply, its count is given back, and the refused sends are counted again).
    async fn recheck_refused(&mut self, items: Vec<(Job, Limit)>, answers: &mut Answers) -> Vec<(Job, Limit)> {
        let refused: HashSet<String> =
            items.iter().filter(|(_, l)| *l == Limit::Refused).map(|(j, _)| conv_of(j)).collect();
        for conv in &refused {
            self.states.forget(conv);
        }
        let _ = self.states.load(refused.iter().map(String::as_str), &self.d).await;
        let mut items = items;
        for (job, limit) in items.iter_mut() {
            if *limit == Limit::Refused && self.states.senders(&conv_of(job)).contains(&job.to) {
                *limit = Limit::Free;
            }
        }
        if !items.iter().any(|(_, l)| *l == Limit::Refused) {
            return items;
        }
        let wanted: Vec<(i64, String)> =
            items.iter().filter_map(|(j, _)| j.client_msg_id.clone().map(|c| (j.from, c))).collect();
        let found = match self.d.messages.find_by_client_msg_ids(&wanted).await {
            Ok(found) => found,
            // the refusals stand
            Err(_) => return items,
        };
        let first: HashMap<(i64, &str), &MessageDoc> =
            found.iter().filter_map(|d| Some(((d.from, d.client_msg_id.as_deref()?), d))).collect();
        let (mut kept, mut taken_back) = (Vec::with_capacity(items.len()), Vec::new());
        for (job, limit) in items {
            match job.client_msg_id.as_deref().and_then(|c| first.get(&(job.from, c))) {
                Some(doc) => {
                    if limit == Limit::Counted {
                        taken_back.push((job.from as u64, job.to as u64));
                    }
                    let doc = (*doc).clone();
                    answers.push((job, Ok(Stored::Existing(doc))));
                }
                None => kept.push((job, limit)),
            }
        }
        let retry: Vec<usize> = (0..kept.len()).filter(|&i| kept[i].1 == Limit::Refused).collect();
        if taken_back.is_empty() || retry.is_empty() {
            return kept;
        }
        let (limit, ttl) = (self.d.settings.no_reply_limit, self.d.settings.no_reply_ttl_secs);
        let again: Vec<(u64, u64)> = retry.iter().map(|&i| (kept[i].0.from as u64, kept[i].0.to as u64)).collect();
        let recount = async {
            self.d.limit.uncount_many(&taken_back).await?;
            self.d.limit.check_and_count_many(&again, limit, ttl).await
        };
        match recount.await {
            Ok(outcomes) => {
                for (&i, o) in retry.iter().zip(outcomes) {
                    kept[i].1 = if o == LimitOutcome::Refused { Limit::Refused } else { Limit::Counted };
                }
            }
            // the refusals stand; the resends' counts may be left over
            Err(e) => warn!(self.log, "no-reply counts not re-checked"; "error" => %e),
        }
        kept
    }

    /// The message as it is stored: unread until a connection of its recipient has it.
    fn new_doc(&self, job: &Job) -> MessageDoc {
        let now = DateTime::now();
        MessageDoc {
            id: ObjectId::new(),
            conv: conversation_id(job.from as u64, job.to as u64),
            seq: 0,
            from: job.from,
            to: job.to,
            content: job.content.clone(),
            created_at: now,
            expire_at: expiry(now, self.d.settings.retention_secs),
            read: false,
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
                users: [d.from.min(d.to), d.from.max(d.to)],
                seq: d.seq,
                at: d.created_at,
                senders: Vec::new(),
            });
            u.seq = u.seq.max(d.seq);
            u.at = u.at.max(d.created_at);
            if !u.senders.contains(&d.from) {
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
        for u in &updates {
            self.states.add_senders(&u.conv, &u.senders);
        }
    }

    /// Queues a stored message on the live connections of its conversation: the recipient's
    /// (true if any took it) and the sender's others.
    fn push(&self, doc: &MessageDoc, conn_id: Option<u64>) -> bool {
        let text: Arc<str> =
            ServerFrame::new(ReplyCode::Incoming, "new message").with_message(ChatMessage::from(doc)).to_json().into();
        let (from, to) = (doc.from as u64, doc.to as u64);
        let delivered = self.d.hub.push(to, from, &Outbound { text: text.clone(), delivers: Some(doc.id) }, None) > 0;
        if from != to {
            self.d.hub.push(from, to, &Outbound { text, delivers: None }, conn_id);
        }
        delivered
    }
}

fn conv_of(job: &Job) -> String {
    conversation_id(job.from as u64, job.to as u64)
}
