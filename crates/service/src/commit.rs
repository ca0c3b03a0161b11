//! Group commit: every send of this process goes through a committer task (one per shard;
//! a conversation always has the same shard), which takes whatever sends are waiting (up to
//! `commit_batch`) and stores them together:
//!
//! 1. the no-reply limit of every send, in one Redis script call;
//! 2. the next seq of each send's conversation, from the last seq it knows (loaded for
//!    conversations it has not seen: the highest stored seq, or the conversation's recorded
//!    one if the messages expired);
//! 3. one ordered insert of all the messages;
//!
//! and only then answers each sender: an acknowledgement still means "stored". The
//! conversation summaries (last seq and time, for the conversation list) are written after,
//! off the send path, by a summarizer task that writes each conversation once per round.
//!
//! Seq numbers: a seq is taken by inserting the message under the unique (conv, seq) index,
//! so a seq exists exactly when its message is stored. The insert is ordered: when it fails
//! at some message, those before it are stored and none after it, so no conversation gets a
//! gap. When the failure is another process having taken a seq (a duplicate key), the
//! committer reloads those conversations' last seq and tries the rest again; a duplicate
//! (sender, client_msg_id) answers with the message stored first. Within a process the single
//! committer of a conversation's shard orders its writes, so races happen only across processes, and they cost a retry,
//! never a wrong number.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use bson::{DateTime, oid::ObjectId};
use chat_dao::{ConversationDao, DaoError, InsertFailure, LimitDao, LimitOutcome, MessageDao};
use chat_model::{ChatMessage, MessageDoc, ReplyCode, ServerFrame, config::ChatSettings, conversation_id};
use slog::{Logger, warn};
use tokio::sync::{mpsc, oneshot};

use crate::{
    chat::expiry,
    error::{ServiceError, ServiceResult},
    hub::{Hub, Outbound},
};

/// How many times a batch retries seqs that other processes took first.
const SEQ_ATTEMPTS: usize = 32;
/// The least time between two rounds of summary writes.
const SUMMARY_PACE: std::time::Duration = std::time::Duration::from_millis(100);
/// Conversations whose last seq is remembered before the memory is cleared.
const SEQ_CACHE: usize = 200_000;

/// What a send turned into.
pub(crate) enum Stored {
    /// Stored now; true when a live connection of the recipient was handed it.
    New(MessageDoc, bool),
    /// The sender's client_msg_id names a message stored before.
    Existing(MessageDoc),
}

pub(crate) struct Job {
    pub from: i64,
    pub to: i64,
    pub content: String,
    pub client_msg_id: Option<String>,
    /// The sending connection: the sender's other connections get the message pushed.
    pub conn_id: Option<u64>,
    pub reply: oneshot::Sender<ServiceResult<Stored>>,
}

/// The handle senders use: one queue per shard. A conversation always goes to the same
/// shard, so each conversation still has exactly one writer per process, while the shards'
/// inserts run at the same time.
#[derive(Clone)]
pub(crate) struct Committer {
    shards: Arc<[mpsc::Sender<Job>]>,
}

impl Committer {
    /// Starts the committer task on the current tokio runtime.
    pub(crate) fn start(
        messages: MessageDao,
        conversations: ConversationDao,
        limit: LimitDao,
        hub: Arc<Hub>,
        settings: ChatSettings,
        log: Logger,
    ) -> Self {
        let batch = settings.commit_batch.max(1);
        let (summaries, summary_rx) = mpsc::channel(batch * 16);
        tokio::spawn(summarize(conversations.clone(), summary_rx, log.clone()));
        let shards: Vec<mpsc::Sender<Job>> = (0..settings.commit_shards.max(1))
            .map(|shard| {
                // a full queue refuses sends (Busy) rather than growing
                let (tx, rx) = mpsc::channel(batch * 8);
                let worker = Worker {
                    messages: messages.clone(),
                    conversations: conversations.clone(),
                    limit: limit.clone(),
                    hub: hub.clone(),
                    settings: settings.clone(),
                    last_seq: HashMap::new(),
                    summaries: summaries.clone(),
                    log: log.new(slog::o!("shard" => shard)),
                };
                tokio::spawn(worker.run(rx, batch));
                tx
            })
            .collect();
        Committer { shards: shards.into() }
    }

    /// Queues a send; the receiver answers once it is stored. Sends queued one after another
    /// from one task are stored in that order. When the store is so far behind that the queue
    /// is full, the send is refused at once ([`ServiceError::Busy`]): the sender is told to send
    /// again, and the connection keeps serving its other frames.
    pub(crate) fn submit(
        &self,
        from: i64,
        to: i64,
        content: String,
        client_msg_id: Option<String>,
        conn_id: Option<u64>,
    ) -> ServiceResult<oneshot::Receiver<ServiceResult<Stored>>> {
        let (reply, answer) = oneshot::channel();
        let shard = (from.min(to) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (from.max(to) as u64);
        match self.shards[(shard % self.shards.len() as u64) as usize].try_send(Job {
            from,
            to,
            content,
            client_msg_id,
            conn_id,
            reply,
        }) {
            Ok(()) => Ok(answer),
            Err(mpsc::error::TrySendError::Full(_)) => Err(ServiceError::Busy),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(ServiceError::Internal("the committer has stopped".into()))
            }
        }
    }
}

struct Worker {
    messages: MessageDao,
    conversations: ConversationDao,
    limit: LimitDao,
    hub: Arc<Hub>,
    settings: ChatSettings,
    /// The last seq known per conversation.
    last_seq: HashMap<String, i64>,
    summaries: mpsc::Sender<Summary>,
    log: Logger,
}

/// A counted send on its way to the store.
struct Pending {
    job: Job,
    doc: MessageDoc,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>, batch: usize) {
        let mut jobs = Vec::with_capacity(batch);
        while rx.recv_many(&mut jobs, batch).await > 0 {
            self.commit(std::mem::take(&mut jobs)).await;
        }
    }

    async fn commit(&mut self, jobs: Vec<Job>) {
        if self.last_seq.len() > SEQ_CACHE {
            self.last_seq.clear();
        }
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
        let mut answers = Vec::with_capacity(firsts.len());
        self.store_batch(firsts, &mut answers).await;
        for (job, answer) in answers {
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

    async fn store_batch(&mut self, jobs: Vec<Job>, answers: &mut Vec<(Job, ServiceResult<Stored>)>) {
        let sends: Vec<(u64, u64)> = jobs.iter().map(|j| (j.from as u64, j.to as u64)).collect();
        let limit = self.settings.no_reply_limit;
        let ttl = self.settings.no_reply_ttl_secs;
        let mut outcomes = match self.limit.check_and_count_many(&sends, limit, ttl).await {
            Ok(o) => o,
            Err(e) => {
                answers.extend(jobs.into_iter().map(|j| (j, Err(ServiceError::Dao(e.shared())))));
                return;
            }
        };
        // A resend of a stored message is normally caught by the insert (and its count taken
        // back). When the limit refused something, a counted resend may be what pushed it
        // over: find the batch's resends now, take their counts back, and ask again.
        let mut jobs = jobs;
        if outcomes.contains(&LimitOutcome::Refused) {
            match self.without_resends(jobs, outcomes, answers).await {
                Some((j, o)) => (jobs, outcomes) = (j, o),
                None => return,
            }
        }
        let mut pending = Vec::with_capacity(jobs.len());
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            match outcome {
                LimitOutcome::Counted(_) => {
                    let doc = self.new_doc(&job);
                    pending.push(Pending { job, doc });
                }
                LimitOutcome::Refused => {
                    // not a resend: without_resends answered those
                    let refused = Err(ServiceError::NoReplyLimit { limit: self.settings.no_reply_limit });
                    answers.push((job, refused));
                }
            }
        }
        let mut stored = Vec::with_capacity(pending.len());
        let mut conflicts = 0;
        while !pending.is_empty() {
            if conflicts > SEQ_ATTEMPTS {
                let e = ServiceError::Internal(format!("no free seq after {SEQ_ATTEMPTS} attempts"));
                self.give_up(pending, e, answers).await;
                break;
            }
            if let Err(e) = self.assign_seqs(&mut pending).await {
                self.give_up(pending, e.into(), answers).await;
                break;
            }
            let docs: Vec<MessageDoc> = pending.iter().map(|p| p.doc.clone()).collect();
            match self.messages.insert_ordered(&docs).await {
                Ok(()) => stored.append(&mut pending),
                Err(InsertFailure { inserted: Some(k), duplicate: true, .. }) if k < pending.len() => {
                    let rest = pending.split_off(k);
                    stored.append(&mut pending);
                    let (rest, seq_conflict) = self.after_duplicate(rest, answers).await;
                    conflicts += usize::from(seq_conflict);
                    pending = rest;
                }
                Err(InsertFailure { inserted, error, .. }) => {
                    let rest = pending.split_off(inserted.unwrap_or(0).min(pending.len()));
                    stored.append(&mut pending);
                    // unknown or failed: what was written is found again by the next reload
                    for p in &rest {
                        self.last_seq.remove(&p.doc.conv);
                    }
                    self.give_up(rest, error.into(), answers).await;
                    break;
                }
            }
        }
        self.record(&stored);
        // pushed here, in seq order, before anyone is answered
        for p in stored {
            let delivered = self.push(&p.doc, p.job.conn_id);
            answers.push((p.job, Ok(Stored::New(p.doc, delivered))));
        }
    }

    /// Answers the batch's resends of stored messages with their first message, takes back
    /// their counts, and counts the refused sends again. None when a store failed (every
    /// job is answered then).
    async fn without_resends(
        &self,
        jobs: Vec<Job>,
        outcomes: Vec<LimitOutcome>,
        answers: &mut Vec<(Job, ServiceResult<Stored>)>,
    ) -> Option<(Vec<Job>, Vec<LimitOutcome>)> {
        let wanted: Vec<(i64, String)> =
            jobs.iter().filter_map(|j| j.client_msg_id.clone().map(|c| (j.from, c))).collect();
        let found = match self.messages.find_by_client_msg_ids(&wanted).await {
            Ok(found) => found,
            Err(e) => {
                let counted: Vec<(u64, u64)> = jobs
                    .iter()
                    .zip(&outcomes)
                    .filter(|(_, o)| **o != LimitOutcome::Refused)
                    .map(|(j, _)| (j.from as u64, j.to as u64))
                    .collect();
                let _ = self.limit.uncount_many(&counted).await;
                answers.extend(jobs.into_iter().map(|j| (j, Err(ServiceError::Dao(e.shared())))));
                return None;
            }
        };
        let first: HashMap<(i64, &str), &MessageDoc> =
            found.iter().filter_map(|d| Some(((d.from, d.client_msg_id.as_deref()?), d))).collect();
        let (mut kept, mut kept_outcomes, mut taken_back, mut retry) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            match job.client_msg_id.as_deref().and_then(|c| first.get(&(job.from, c))) {
                Some(doc) => {
                    if outcome != LimitOutcome::Refused {
                        taken_back.push((job.from as u64, job.to as u64));
                    }
                    let doc = (*doc).clone();
                    answers.push((job, Ok(Stored::Existing(doc))));
                }
                None => {
                    if outcome == LimitOutcome::Refused {
                        retry.push(kept.len());
                    }
                    kept.push(job);
                    kept_outcomes.push(outcome);
                }
            }
        }
        if taken_back.is_empty() || retry.is_empty() {
            return Some((kept, kept_outcomes));
        }
        let limit = self.settings.no_reply_limit;
        let ttl = self.settings.no_reply_ttl_secs;
        let again: Vec<(u64, u64)> = retry.iter().map(|&i| (kept[i].from as u64, kept[i].to as u64)).collect();
        let recount = async {
            self.limit.uncount_many(&taken_back).await?;
            self.limit.check_and_count_many(&again, limit, ttl).await
        };
        match recount.await {
            Ok(new) => {
                for (&i, o) in retry.iter().zip(new) {
                    kept_outcomes[i] = o;
                }
            }
            // the refusals stand; the resends' counts may be left over
            Err(e) => warn!(self.log, "no-reply counts not re-checked"; "error" => %e),
        }
        Some((kept, kept_outcomes))
    }

    fn new_doc(&self, job: &Job) -> MessageDoc {
        let online = self.hub.is_open(job.to as u64, job.from as u64);
        let now = DateTime::now();
        MessageDoc {
            id: ObjectId::new(),
            conv: conversation_id(job.from as u64, job.to as u64),
            seq: 0,
            from: job.from,
            to: job.to,
            content: job.content.clone(),
            created_at: now,
            expire_at: expiry(now, self.settings.retention_secs),
            read: online,
            delivered: online,
            client_msg_id: job.client_msg_id.clone(),
        }
    }

    /// Gives each pending message the next seq of its conversation.
    async fn assign_seqs(&mut self, pending: &mut [Pending]) -> Result<(), DaoError> {
        let unknown: Vec<String> = pending
            .iter()
            .map(|p| p.doc.conv.clone())
            .filter(|c| !self.last_seq.contains_key(c))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !unknown.is_empty() {
            let (stored, recorded) =
                tokio::join!(self.messages.last_seqs(&unknown), self.conversations.last_seqs(&unknown));
            let (stored, recorded) = (stored?, recorded?);
            for conv in unknown {
                let last = stored.get(&conv).copied().unwrap_or(0).max(recorded.get(&conv).copied().unwrap_or(0));
                self.last_seq.insert(conv, last);
            }
        }
        let mut next: HashMap<&str, i64> = HashMap::new();
        for p in pending.iter_mut() {
            let n = next.entry(&p.doc.conv).or_insert_with(|| self.last_seq.get(&p.doc.conv).copied().unwrap_or(0));
            *n += 1;
            p.doc.seq = *n;
        }
        for (conv, seq) in next {
            self.last_seq.insert(conv.to_string(), seq);
        }
        Ok(())
    }

    /// The first of `rest` hit a unique index: either its (sender, client_msg_id) was stored
    /// before — it gets that message — or another process took its seq (then true).
    async fn after_duplicate(
        &mut self,
        mut rest: Vec<Pending>,
        answers: &mut Vec<(Job, ServiceResult<Stored>)>,
    ) -> (Vec<Pending>, bool) {
        for p in &rest {
            self.last_seq.remove(&p.doc.conv);
        }
        let first = &rest[0];
        let existing = match &first.doc.client_msg_id {
            Some(cmid) => self
                .messages
                .find_by_client_msg_ids(&[(first.doc.from, cmid.clone())])
                .await
                .map(|f| f.into_iter().next()),
            None => Ok(None),
        };
        let answer = match existing {
            Ok(None) => return (rest, true),
            Ok(Some(doc)) => Ok(Stored::Existing(doc)),
            Err(e) => Err(e.into()),
        };
        let p = rest.remove(0);
        self.uncount(&[&p]).await;
        answers.push((p.job, answer));
        (rest, false)
    }

    /// Answers the rest with `error` and takes back their no-reply counts.
    async fn give_up(&self, rest: Vec<Pending>, error: ServiceError, answers: &mut Vec<(Job, ServiceResult<Stored>)>) {
        self.uncount(&rest.iter().collect::<Vec<_>>()).await;
        warn!(self.log, "sends refused"; "count" => rest.len(), "error" => %error);
        answers.extend(rest.into_iter().map(|p| (p.job, Err(error.shared()))));
    }

    async fn uncount(&self, ps: &[&Pending]) {
        let sends: Vec<(u64, u64)> = ps.iter().map(|p| (p.doc.from as u64, p.doc.to as u64)).collect();
        if let Err(e) = self.limit.uncount_many(&sends).await {
            warn!(self.log, "no-reply counters not restored"; "count" => sends.len(), "error" => %e);
        }
    }

    /// Hands the batch's conversations to the summarizer (never waiting: a record it cannot
    /// take now is only a summary that lags until the conversation's next message).
    fn record(&self, stored: &[Pending]) {
        for p in stored {
            let d = &p.doc;
            let summary = Summary {
                conv: d.conv.clone(),
                users: [d.from.min(d.to), d.from.max(d.to)],
                seq: d.seq,
                at: d.created_at,
            };
            if self.summaries.try_send(summary).is_err() {
                warn!(self.log, "conversation summary skipped: the summarizer is behind"; "conv" => &d.conv);
            }
        }
    }

    /// Queues a stored message on the live connections of its conversation: the recipient's
    /// (true if any took it) and the sender's others.
    fn push(&self, doc: &MessageDoc, conn_id: Option<u64>) -> bool {
        let text: Arc<str> =
            ServerFrame::new(ReplyCode::Incoming, "new message").with_message(ChatMessage::from(doc)).to_json().into();
        let (from, to) = (doc.from as u64, doc.to as u64);
        let delivered = self.hub.push(to, from, &Outbound { text: text.clone(), delivers: Some(doc.id) }, None) > 0;
        if from != to {
            self.hub.push(from, to, &Outbound { text, delivers: None }, conn_id);
        }
        delivered
    }
}

/// A conversation's newest stored message, for its summary.
struct Summary {
    conv: String,
    users: [i64; 2],
    seq: i64,
    at: DateTime,
}

/// Keeps the `conversations` summaries up to date, off the send path: it takes whatever
/// records are waiting, keeps the newest per conversation, and writes each once. The writes
/// only ever raise `last_seq` and `last_at`, so their order does not matter.
async fn summarize(conversations: ConversationDao, mut rx: mpsc::Receiver<Summary>, log: Logger) {
    use futures_util::StreamExt as _;
    let mut buf = Vec::with_capacity(4096);
    while rx.recv_many(&mut buf, 4096).await > 0 {
        let mut newest: HashMap<String, Summary> = HashMap::new();
        for s in buf.drain(..) {
            match newest.get_mut(&s.conv) {
                Some(n) => {
                    n.seq = n.seq.max(s.seq);
                    n.at = n.at.max(s.at);
                }
                None => {
                    newest.insert(s.conv.clone(), s);
                }
            }
        }
        let writes = futures_util::stream::iter(newest.into_values())
            .map(|s| {
                let conversations = &conversations;
                async move { (conversations.record(&s.conv, s.users, s.seq, s.at).await, s.conv) }
            })
            .buffer_unordered(32);
        let failed: Vec<_> = writes.filter_map(|(r, conv)| async move { r.err().map(|e| (conv, e)) }).collect().await;
        for (conv, e) in failed {
            // the messages are stored; only the conversation list and the seq floor lag
            warn!(log, "conversation not recorded"; "conv" => conv, "error" => %e);
        }
        // let records gather: under load a busy conversation is written a few times a second,
        // not once per batch (measured: per-batch summaries cost the store more than the inserts)
        tokio::time::sleep(SUMMARY_PACE).await;
    }
}
