//! Read positions: each user has one per conversation (in its summary, see
//! `ConversationDao`), the truth of what they have seen. It only grows, never past the last
//! seq, and the `read` flags of the messages sent to that user follow it. Every move is told to
//! the reader's connections (their other devices clear their badges) and to the peer's (their
//! messages show as read) as a 50010.
//!
//! A position moves by a read receipt (at once, [`Reads::apply`]), and by what the reader sent
//! or was shown: a send, a message written to a socket pinned to the conversation, an unread
//! page. Those are handed over as [`ReadMark`]s and applied by one worker per process, a round
//! at a time, a moment (`chat.read_mark_delay_ms`) after the first: a frame handed to the socket
//! layer has left the process by then, so a server killed meanwhile leaves it unread, never read
//! and lost. A send or a push moves the position only up to the first unread message to the
//! reader that was not shown (see [`Seen`]). A mark
//! that cannot be written leaves its messages unread: shown again, never lost.

use std::{collections::HashMap, sync::Arc, time::Duration};

use bson::DateTime;
use chat_dao::{ConversationDao, DaoResult, MessageDao};
use chat_model::{ServerFrame, Target};
use futures_util::StreamExt as _;
use slog::{Logger, warn};
use tokio::sync::mpsc;

use crate::{
    chat::expiry,
    cluster::{Audience, Delivery, Push},
    metrics::Metrics,
    workers::Stop,
};

/// Marks waiting at most; beyond it a mark is dropped (its messages stay unread).
const QUEUE: usize = 1 << 16;
/// Tries per mark before it is dropped.
const ATTEMPTS: u32 = 3;
/// Marks per write.
const CHUNK: usize = 1000;
/// Unread lookups of one round at once.
const LOOKUPS_IN_FLIGHT: usize = 16;

/// What a mark says the reader has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Everything up to `seq`: a receipt, or an unread page (every unread message to the reader
    /// up to its last seq is in it).
    UpTo,
    /// The reader sent `seq`: you have seen what you answered, so the position moves to it —
    /// but only over messages the reader was shown: a message of the peer's stored just before
    /// (crossing the answer) and never written to the reader stays unread.
    Sent,
    /// The one message `seq`, pushed to a socket pinned to the conversation: the position moves
    /// over it only when every unread message before it was shown too (pushed in the same
    /// round, or covered by the position), so a message nobody wrote stays unread.
    Pushed,
}

/// `reader` has seen the conversation `conv` (`with` a peer, or a group) up to `seq` (see
/// [`Seen`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMark {
    pub conv: Arc<str>,
    pub reader: i64,
    pub with: Target,
    pub seq: i64,
    pub seen: Seen,
}

/// Moves read positions and what follows them.
#[derive(Clone)]
pub(crate) struct Reads {
    pub conversations: ConversationDao,
    pub messages: MessageDao,
    pub delivery: Delivery,
    pub retention_secs: u64,
    pub log: Logger,
}

impl Reads {
    /// A read receipt: moves the reader's position to `mark.seq` (never backwards, at most the
    /// last seq), marks the messages to the reader up to it read, and, when it moved, tells the
    /// reader's and the peer's connections, except `skip`. Returns the position, or None when
    /// the conversation has no messages. The position is written first: flags that could not
    /// follow are set by the next move (or the next unread page).
    pub(crate) async fn apply(&self, mark: &ReadMark, skip: Option<u64>) -> DaoResult<Option<i64>> {
        let Some((before, position)) = self.conversations.advance(&mark.conv, mark.reader, mark.seq).await? else {
            return Ok(None);
        };
        let expire_at = expiry(DateTime::now(), self.retention_secs);
        // a group message has many readers: its read state is the positions alone
        if mark.with.peer().is_some()
            && let Err(e) = self.messages.mark_read_upto(&mark.conv, mark.reader, position, expire_at).await
        {
            warn!(self.log, "read flags not set; the next move sets them"; "conv" => &*mark.conv, "reader" => mark.reader, "error" => %e);
        }
        if position > before {
            self.delivery.push(&[receipt(mark, position, skip)]).await;
        }
        Ok(Some(position))
    }
}

/// Where the sessions and the committers hand over marks.
#[derive(Clone)]
pub(crate) struct ReadMarks {
    tx: mpsc::Sender<ReadMark>,
    dropped: prometheus_client::metrics::counter::Counter,
}

impl ReadMarks {
    pub(crate) fn new(metrics: &Metrics) -> (ReadMarks, mpsc::Receiver<ReadMark>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (ReadMarks { tx, dropped: metrics.read_marks_dropped.clone() }, rx)
    }

    /// Hands over a mark; a full queue drops it (its messages stay unread), counted in
    /// `chat_read_marks_dropped_total`.
    pub(crate) fn mark(&self, mark: ReadMark) {
        if self.tx.try_send(mark).is_err() {
            self.dropped.inc();
        }
    }
}

/// The worker: applies the marks, a round at a time, until `stop` (then at once).
pub(crate) async fn run(
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<ReadMark>>>,
    reads: Reads,
    delay: Duration,
    metrics: Metrics,
    stop: Stop,
) {
    let mut rx = rx.lock().await;
    let mut marks = Vec::with_capacity(4096);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            n = rx.recv_many(&mut marks, 4096) => {
                if n == 0 {
                    break;
                }
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(delay) => {}
                }
                while let Ok(m) = rx.try_recv() {
                    marks.push(m);
                }
                metrics.queue("read-marks", rx.len());
                apply_all(&reads, std::mem::take(&mut marks)).await;
            }
        }
    }
    // stopping: the sessions are closed; apply what they wrote
    while let Ok(m) = rx.try_recv() {
        marks.push(m);
    }
    apply_all(&reads, marks).await;
}

/// One round: the marks merged per (conversation, reader) into the position each reaches; the
/// positions in one write, the flags in another (a journal flush each, whatever the number of
/// marks), then the connections told (`read_seq`: the position the round reached; it may have
/// been moved further meanwhile). A round that cannot be written is tried again, then dropped:
/// its messages stay unread.
async fn apply_all(reads: &Reads, marks: Vec<ReadMark>) {
    if marks.is_empty() {
        return;
    }
    struct Merged {
        mark: ReadMark,
        /// The position the pages and receipts showed.
        upto: i64,
        /// The highest seq sent or pushed, and the pushed ones.
        reach: i64,
        pushed: std::collections::BTreeSet<i64>,
    }
    let mut merged: HashMap<(Arc<str>, i64), Merged> = HashMap::new();
    for m in marks {
        let e = merged.entry((m.conv.clone(), m.reader)).or_insert_with(|| Merged {
            mark: m.clone(),
            upto: 0,
            reach: 0,
            pushed: Default::default(),
        });
        match m.seen {
            Seen::UpTo => e.upto = e.upto.max(m.seq),
            Seen::Sent => e.reach = e.reach.max(m.seq),
            Seen::Pushed => {
                e.reach = e.reach.max(m.seq);
                e.pushed.insert(m.seq);
            }
        }
    }
    // the sends and pushes extend a position only up to the first unread message to the reader
    // that none of them showed; where that cannot be read, only as far as the pages and receipts
    // went (the rest stays unread: shown again, never lost)
    let extended = futures_util::stream::iter(merged.into_values().map(|mut m| async move {
        if m.reach > m.upto {
            let found = reads
                .messages
                .unread_seqs_between(&m.mark.conv, m.mark.reader, m.upto, m.reach, m.pushed.len() as i64 + 1)
                .await;
            if let Ok(unread) = found {
                let gap = unread.into_iter().find(|seq| !m.pushed.contains(seq));
                m.upto = match gap {
                    Some(first) => (first - 1).max(m.upto),
                    None => m.reach,
                };
            }
        }
        m
    }))
    .buffer_unordered(LOOKUPS_IN_FLIGHT)
    .collect::<Vec<Merged>>()
    .await;
    let mut marks: Vec<ReadMark> = Vec::with_capacity(extended.len());
    for mut m in extended {
        if m.upto > 0 {
            m.mark.seq = m.upto;
            marks.push(m.mark);
        }
    }
    let moves: Vec<(&str, i64, i64)> = marks.iter().map(|m| (&*m.conv, m.reader, m.seq)).collect();
    let flags: Vec<(&str, i64, i64)> =
        marks.iter().filter(|m| m.with.peer().is_some()).map(|m| (&*m.conv, m.reader, m.seq)).collect();
    for attempt in 1..=ATTEMPTS {
        let round = async {
            for chunk in moves.chunks(CHUNK) {
                reads.conversations.advance_many(chunk).await?;
            }
            let expire_at = expiry(DateTime::now(), reads.retention_secs);
            for chunk in flags.chunks(CHUNK) {
                reads.messages.mark_read_upto_many(chunk, expire_at).await?;
            }
            Ok::<_, chat_dao::DaoError>(())
        };
        match round.await {
            Ok(()) => break,
            Err(e) if attempt == ATTEMPTS => {
                warn!(reads.log, "read positions not moved; their messages stay unread"; "marks" => marks.len(), "error" => %e);
                return;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await,
        }
    }
    let pushes: Vec<Push> = marks.iter().map(|m| receipt(m, m.seq, None)).collect();
    reads.delivery.push(&pushes).await;
}

/// The 50010 of a move, for the reader's connections (but `skip`) and, in a direct
/// conversation, the peer's. In a group only the reader's own connections hear of it (the
/// members' positions are in the group's view).
fn receipt(mark: &ReadMark, position: i64, skip: Option<u64>) -> Push {
    let reader = mark.reader as u64;
    let frame = ServerFrame::read_receipt(&mark.conv, mark.with.group(), reader, position);
    let mut to = vec![Audience { skip, counts: false, ..Audience::of(vec![reader], Some(mark.with)) }];
    if let Target::User(peer) = mark.with
        && peer != reader
    {
        to.push(Audience::of(vec![peer], Some(Target::User(reader))));
    }
    Push::event(frame.to_json(), to)
}
