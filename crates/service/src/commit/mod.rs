//! Group commit: every send of this process goes through a committer (one per shard; a
//! conversation always has the same shard), which takes whatever sends are waiting (up to
//! `commit_batch`) and stores them together:
//!
//! 1. the state of each conversation it has not seen (its last seq, who has sent in it), one
//!    indexed read per conversation ([`state`]);
//! 2. the no-reply limit, for the sends to a peer who has never sent in the conversation:
//!    counted from the messages stored (in the state loaded in 1), so no counter can be lost
//!    or left over;
//! 3. the next seq of each send's conversation, and one ordered insert of all the messages
//!    ([`insert`]), whose unknown outcomes are settled before anyone hears of them;
//! 4. the conversation summaries (last seq and time, senders), in one write;
//!
//! and only then pushes each message to the live connections and answers each sender: an
//! acknowledgement means "stored, durably, and recorded".
//!
//! Seq numbers: a seq is taken by inserting the message under the unique (conv, seq) index,
//! so a seq exists exactly when its message is stored. The insert is ordered: when it fails
//! at some message, those before it are stored and none after it, so no conversation gets a
//! gap. When the failure is another process having taken a seq (a duplicate key), the rest
//! of the batch is stored per conversation, all at once, each retrying from its last seq read
//! afresh (so a conversation two nodes write holds up no other); a duplicate (sender,
//! client_msg_id) answers with the message stored first. The seqs other nodes push are taken
//! as hints ([`SeqHints`]), which saves most of those races. Within a process the single
//! committer of a conversation's shard orders its writes, so races happen only across
//! processes, and they cost a retry, never a wrong number.

mod insert;
mod state;
mod worker;

pub(crate) use state::SeqHints;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use chat_dao::{ConversationDao, MessageDao};
use chat_model::{GroupEvent, MessageDoc, Target, config::ChatSettings};
use slog::Logger;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::{
    cluster::Delivery,
    error::{ServiceError, ServiceResult},
    groups::GroupCache,
    metrics::Metrics,
    reads::ReadMarks,
    workers::Workers,
};

/// What a send turned into.
pub(crate) enum Stored {
    /// Stored now; true when a live connection of the recipient was handed it.
    New(MessageDoc, bool),
    /// The sender's client_msg_id names a message stored before.
    Existing(MessageDoc),
}

pub(crate) type Answer = ServiceResult<Stored>;

pub(crate) struct Job {
    pub from: i64,
    /// The conversation, as the sender sees it.
    pub target: Target,
    /// A group's system message: the change it records (its users hear of it too).
    pub event: Option<GroupEvent>,
    pub content: String,
    pub client_msg_id: Option<String>,
    /// The sending connection: the sender's other connections get the message pushed.
    pub conn_id: Option<u64>,
    pub reply: oneshot::Sender<Answer>,
}

/// What a committer needs besides its queue.
#[derive(Clone)]
pub(crate) struct Deps {
    pub messages: MessageDao,
    pub conversations: ConversationDao,
    /// Where stored messages are pushed: this node's connections and the other nodes'.
    pub delivery: Delivery,
    /// Who a group message is pushed to.
    pub groups: GroupCache,
    /// The senders' read flags follow their positions, after the commit.
    pub marks: ReadMarks,
    /// Seqs the other nodes stored, heard from their pushes.
    pub hints: SeqHints,
    pub settings: ChatSettings,
    pub metrics: Metrics,
    pub log: Logger,
}

/// The handle senders use: one queue per shard. A conversation always goes to the same
/// shard, so each conversation still has exactly one writer per process, while the shards'
/// inserts run at the same time.
#[derive(Clone)]
pub(crate) struct Committer {
    shards: Arc<[mpsc::Sender<Job>]>,
    closed: Arc<AtomicBool>,
}

/// The worker name prefix of the committers, for stopping them.
pub(crate) const WORKER: &str = "commit-";

impl Committer {
    /// Starts one supervised committer per shard.
    pub(crate) fn start(deps: Deps, workers: &Workers) -> Self {
        let batch = deps.settings.commit_batch.max(1);
        let shards: Vec<mpsc::Sender<Job>> = (0..deps.settings.commit_shards.max(1))
            .map(|shard| {
                // a full queue refuses sends (Busy) rather than growing
                let (tx, rx) = mpsc::channel(batch * 8);
                // kept outside the task, so that a restarted committer goes on with the queue
                let rx = Arc::new(Mutex::new(rx));
                let deps = deps.clone();
                workers.spawn(format!("{WORKER}{shard}"), move |stop| {
                    worker::run(deps.clone(), shard, rx.clone(), batch, stop)
                });
                tx
            })
            .collect();
        Committer { shards: shards.into(), closed: Arc::default() }
    }

    /// Refuses new sends from now on ([`ServiceError::ShuttingDown`]); the committers store
    /// the ones queued when they are stopped.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Queues a send; the receiver answers once it is stored. Sends queued one after another
    /// from one task are stored in that order. When the store is so far behind that the queue
    /// is full, the send is refused at once ([`ServiceError::Busy`]): the sender is told to send
    /// again, and the connection keeps serving its other frames.
    pub(crate) fn submit(
        &self,
        from: i64,
        target: Target,
        event: Option<GroupEvent>,
        content: String,
        client_msg_id: Option<String>,
        conn_id: Option<u64>,
    ) -> ServiceResult<oneshot::Receiver<Answer>> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(ServiceError::ShuttingDown);
        }
        let (reply, answer) = oneshot::channel();
        let shard = match target {
            Target::User(to) => {
                let (from, to) = (from as u64, to);
                from.min(to).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ from.max(to)
            }
            // a group's sends share one shard; other conversations' commits go on beside it
            Target::Group(g) => g.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17),
        };
        let job = Job { from, target, event, content, client_msg_id, conn_id, reply };
        match self.shards[(shard % self.shards.len() as u64) as usize].try_send(job) {
            Ok(()) => Ok(answer),
            Err(mpsc::error::TrySendError::Full(_)) => Err(ServiceError::Busy),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(ServiceError::ShuttingDown),
        }
    }
}
