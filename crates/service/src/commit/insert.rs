//! The insert of a commit: seqs, the ordered insert, what a duplicate key means, and the
//! settling of an insert whose outcome is unknown.
//!
//! Unknown outcomes (a timeout, a lost connection, a write-concern error, a store that was
//! killed) are settled by inserting the same documents again, in order, until each is known to
//! be stored or not: a document's `_id` is its own, so inserting it again either stores it or
//! is refused as a duplicate of itself (then it was stored), and the request that is perhaps
//! still on its way can no longer store anything (its first document already exists, and the
//! insert is ordered). A read alone could not settle it: it may overtake that request.
//! Only then is anyone answered, so nobody is told "not stored" about a stored message.

use std::time::{Duration, Instant};

use chat_dao::{DaoError, InsertFailure};
use futures_util::StreamExt as _;
use slog::warn;

use super::{
    Stored,
    worker::{Answers, Pending, Worker},
};
use crate::error::ServiceError;

/// How many times a batch retries seqs that other processes took first (each retry stores the
/// part of the batch before the conflict, so a batch always progresses).
const SEQ_ATTEMPTS: usize = 64;
/// Conversations of a batch stored at once after a conflict (within the driver's pool).
const CONVS_AT_ONCE: usize = 8;
/// The slowest retry of an insert being settled.
const SETTLE_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// After `n` documents from the front were stored, what happened to the next one.
enum Next {
    /// Nothing is left.
    Done,
    /// It conflicts with a document that is not ours (a seq or a client_msg_id taken first).
    Duplicate,
    /// It was refused for good, and so was everything after it.
    Failed(DaoError),
}

/// Whether the document behind a duplicate-key refusal is ours.
enum Ours {
    Yes,
    No,
    /// Stored on the primary but not yet on a majority (or the store did not answer).
    Unsure,
}

/// Stores `pending` (seqs assigned here), answering the sends that cannot be stored; returns
/// the stored ones, in seq order per conversation.
///
/// The batch goes as one ordered insert. When it meets a duplicate (another process took a seq
/// first, or a resend's client_msg_id), what is left is stored conversation by conversation,
/// several at once: each conversation's messages in one ordered insert that retries only its
/// own conflicts, so that one conflict does not cost every other conversation of the batch a
/// round (the batch is answered when its slowest conversation is stored).
pub(super) async fn store(w: &mut Worker, pending: Vec<Pending>, answers: &mut Answers) -> Vec<Pending> {
    let mut pending = reload(w, pending, answers).await;
    w.states.assign(&mut pending, &w.d.hints);
    let (mut stored, next) = insert_front(w, &mut pending).await;
    match next {
        Next::Done => {}
        Next::Failed(error) => {
            // what was written is found again by the next load
            for p in &pending {
                w.states.forget(&p.doc.conv);
            }
            give_up(w, pending, error.into(), answers);
        }
        Next::Duplicate => {
            // per conversation, in the order of the batch, from the seq before its first
            let mut convs: Vec<(String, Vec<Pending>)> = Vec::new();
            for p in pending {
                match convs.iter_mut().find(|(c, _)| *c == p.doc.conv) {
                    Some((_, list)) => list.push(p),
                    None => convs.push((p.doc.conv.clone(), vec![p])),
                }
            }
            let worker: &Worker = w;
            let runs = futures_util::stream::iter(convs.into_iter().map(|(conv, list)| async move {
                let last = list[0].doc.seq - 1;
                (conv, store_conv(worker, last, list).await)
            }))
            .buffer_unordered(CONVS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
            for (conv, (mut done, mut said, last)) in runs {
                w.states.set_last(&conv, last);
                stored.append(&mut done);
                answers.append(&mut said);
            }
        }
    }
    stored
}

/// One ordered insert of `pending`: moves the stored ones from its front into what it returns,
/// with what stopped it (an unknown outcome is settled first).
async fn insert_front(w: &Worker, pending: &mut Vec<Pending>) -> (Vec<Pending>, Next) {
    let mut stored = Vec::new();
    let docs: Vec<_> = pending.iter().map(|p| p.doc.clone()).collect();
    let started = Instant::now();
    let result = w.d.messages.insert_ordered(&docs).await;
    w.d.metrics.insert_seconds.observe(started.elapsed().as_secs_f64());
    let (n, next) = match result {
        Ok(()) => (pending.len(), Next::Done),
        Err(InsertFailure { inserted: Some(k), duplicate: true, .. }) if k < pending.len() => {
            match ours(w, &pending[k]).await {
                Ours::No => (k, Next::Duplicate),
                // ours, stored by an earlier attempt (the driver's own retry), which may have
                // stored the rest too, or still be storing it: settled, with the same seqs
                Ours::Yes | Ours::Unsure => {
                    let rest = pending.split_off(k);
                    stored.append(pending);
                    *pending = rest;
                    settle(w, pending).await
                }
            }
        }
        Err(InsertFailure { inserted: Some(k), error, .. }) => (k.min(pending.len()), Next::Failed(error)),
        Err(InsertFailure { inserted: None, error, .. }) => {
            warn!(w.log, "insert outcome unknown; settling it"; "count" => pending.len(), "error" => %error);
            settle(w, pending).await
        }
    };
    let rest = pending.split_off(n);
    stored.append(pending);
    *pending = rest;
    (stored, next)
}

/// Stores one conversation's `pending` after seq `last`, retrying the seqs another process
/// takes first (after the conversation's last stored seq, read afresh); returns the stored
/// ones, the answers of those that cannot be, and the last seq known to be taken.
async fn store_conv(w: &Worker, mut last: i64, mut pending: Vec<Pending>) -> (Vec<Pending>, Answers, i64) {
    let (mut stored, mut answers) = (Vec::new(), Vec::new());
    let mut conflicts = 0;
    while !pending.is_empty() {
        if conflicts > SEQ_ATTEMPTS {
            let e = ServiceError::Internal(format!("no free seq after {SEQ_ATTEMPTS} attempts"));
            give_up(w, std::mem::take(&mut pending), e, &mut answers);
            break;
        }
        for (i, p) in pending.iter_mut().enumerate() {
            p.doc.seq = last + 1 + i as i64;
        }
        let (mut done, next) = insert_front(w, &mut pending).await;
        if let Some(p) = done.last() {
            last = p.doc.seq;
        }
        stored.append(&mut done);
        match next {
            Next::Done => {}
            Next::Failed(error) => give_up(w, std::mem::take(&mut pending), error.into(), &mut answers),
            Next::Duplicate => {
                let first = &pending[0];
                let earlier = match &first.doc.client_msg_id {
                    Some(cmid) => {
                        w.d.messages
                            .find_by_client_msg_ids(&[(first.doc.from, cmid.clone())])
                            .await
                            .map(|f| f.into_iter().next())
                    }
                    None => Ok(None),
                };
                match earlier {
                    // another process took the seq: after the conversation's last, read afresh
                    Ok(None) => {
                        conflicts += 1;
                        w.d.metrics.seq_conflicts.inc();
                        match w.d.messages.last_seq(&first.doc.conv).await {
                            Ok(seq) => last = last.max(seq.unwrap_or(0)),
                            Err(e) => give_up(w, std::mem::take(&mut pending), e.into(), &mut answers),
                        }
                    }
                    // a resend of a stored message: it gets that message (read with read
                    // concern "majority": one not yet on a majority counts as not found)
                    Ok(Some(doc)) => {
                        let p = pending.remove(0);
                        answers.push((p.job, Ok(Stored::Existing(doc))));
                    }
                    // ours is not stored (it was refused); which message holds its id is unknown
                    Err(e) => {
                        let p = pending.remove(0);
                        answers.push((p.job, Err(e.into())));
                    }
                }
            }
        }
    }
    (stored, answers, last)
}

/// Loads the conversations forgotten after a conflict; the sends of one that cannot be loaded
/// fail, the others go on.
async fn reload(w: &mut Worker, pending: Vec<Pending>, answers: &mut Answers) -> Vec<Pending> {
    let convs: Vec<String> = pending.iter().map(|p| p.doc.conv.clone()).collect();
    let failed = w.states.load(convs.iter().map(String::as_str), &w.d).await;
    if failed.is_empty() {
        return pending;
    }
    let (mut kept, mut lost) = (Vec::with_capacity(pending.len()), Vec::new());
    for p in pending {
        match failed.get(&p.doc.conv) {
            Some(e) => lost.push((p, ServiceError::Dao(e.shared()))),
            None => kept.push(p),
        }
    }
    for (p, e) in lost {
        give_up(w, vec![p], e, answers);
    }
    kept
}

/// Inserts `pending` again, in order, until the outcome of each is known; waits out a store
/// that does not answer. Returns how many from the front are stored, and what stopped it.
async fn settle(w: &Worker, pending: &[Pending]) -> (usize, Next) {
    w.d.metrics.unknown_outcomes.inc();
    let mut done = 0;
    let mut backoff = Duration::from_millis(100);
    let mut attempts = 0u32;
    loop {
        if done == pending.len() {
            return (done, Next::Done);
        }
        let docs: Vec<_> = pending[done..].iter().map(|p| p.doc.clone()).collect();
        match w.d.messages.insert_ordered(&docs).await {
            Ok(()) => return (pending.len(), Next::Done),
            // it never reached a server: it says nothing of the attempt being settled
            Err(InsertFailure { sent: false, .. }) => {}
            Err(InsertFailure { inserted: Some(k), duplicate: true, .. }) if done + k < pending.len() => {
                done += k;
                match ours(w, &pending[done]).await {
                    Ours::Yes => {
                        done += 1;
                        continue;
                    }
                    Ours::No => return (done, Next::Duplicate),
                    Ours::Unsure => {}
                }
            }
            Err(InsertFailure { inserted: Some(k), error, .. }) => {
                return ((done + k).min(pending.len()), Next::Failed(error));
            }
            Err(InsertFailure { inserted: None, error, .. }) => {
                attempts += 1;
                if attempts.is_multiple_of(10) {
                    warn!(w.log, "insert still unsettled; the senders wait"; "count" => pending.len() - done, "attempts" => attempts, "error" => %error);
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(SETTLE_BACKOFF_MAX);
    }
}

/// Whether the document a unique index refused is ours (stored by an earlier attempt): read
/// with read concern "majority", so that a write only the primary holds does not count yet.
async fn ours(w: &Worker, p: &Pending) -> Ours {
    match w.d.messages.stored_ids(&[p.doc.id], true).await {
        Ok(found) if !found.is_empty() => return Ours::Yes,
        Ok(_) => {}
        Err(_) => return Ours::Unsure,
    }
    match w.d.messages.stored_ids(&[p.doc.id], false).await {
        Ok(found) if found.is_empty() => Ours::No,
        _ => Ours::Unsure,
    }
}

/// Answers `rest` with `error`: none of them is stored.
fn give_up(w: &Worker, rest: Vec<Pending>, error: ServiceError, answers: &mut Answers) {
    if rest.is_empty() {
        return;
    }
    warn!(w.log, "sends refused"; "count" => rest.len(), "error" => %error);
    answers.extend(rest.into_iter().map(|p| (p.job, Err(error.shared()))));
}
