//! `store`: MongoDB's own insert ceiling on this machine, with the message document's shape
//! and the indexes the server's message collection has (read from it in the same run), in
//! batches of 1, 100 and 500, under the write concern the server is given.

use std::{
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::{Duration, Instant},
};

use bson::{DateTime, oid::ObjectId};
use chat_model::{MessageDoc, config::ChatSettings, conversation_id};
use futures_util::TryStreamExt as _;
use mongodb::{Collection, IndexModel};

use crate::{
    client::BenchResult,
    measure::Progress,
    pairs::{Percentiles, histogram},
};

#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreResult {
    pub batch: usize,
    pub writers: usize,
    pub docs: u64,
    pub docs_per_s: f64,
    /// one document's size in BSON (the message shape with `size` characters of content)
    pub doc_bytes: usize,
    /// the indexes the collection had, besides `_id`
    pub indexes: Vec<String>,
}

/// The indexes of the message collection, as the server made them (name: keys, options), to
/// give the probe's collection exactly the same; the server's own list when the collection
/// does not exist yet (no server has started on this database).
pub async fn server_indexes(db: &mongodb::Database) -> BenchResult<(Vec<IndexModel>, &'static str)> {
    let coll = db.collection::<bson::Document>(chat_dao::message::COLLECTION);
    let listed: Vec<IndexModel> = match coll.list_indexes().await {
        Ok(cursor) => cursor.try_collect().await?,
        Err(_) => Vec::new(),
    };
    let listed: Vec<IndexModel> =
        listed.into_iter().filter(|m| m.options.as_ref().and_then(|o| o.name.as_deref()) != Some("_id_")).collect();
    if listed.is_empty() {
        Ok((chat_dao::message::index_models(), "as the server creates them"))
    } else {
        Ok((listed, "read from the server's collection"))
    }
}

/// `name {keys} unique partial ttl` for each index.
pub fn describe(indexes: &[IndexModel]) -> Vec<String> {
    indexes
        .iter()
        .map(|m| {
            let o = m.options.clone().unwrap_or_default();
            let mut d = format!("{} {}", o.name.unwrap_or_else(|| "?".into()), m.keys);
            if o.unique == Some(true) {
                d.push_str(" unique");
            }
            if o.partial_filter_expression.is_some() {
                d.push_str(" partial");
            }
            if o.expire_after.is_some() {
                d.push_str(" ttl");
            }
            d
        })
        .collect()
}

/// A fresh collection with `indexes`.
async fn fresh(db: &mongodb::Database, name: &str, indexes: &[IndexModel]) -> BenchResult<Collection<MessageDoc>> {
    let coll: Collection<MessageDoc> = db.collection(name);
    coll.drop().await?;
    let models: Vec<IndexModel> = indexes
        .iter()
        .cloned()
        .map(|mut m| {
            // the listing's version field is the server's business, not an option to repeat
            if let Some(o) = m.options.as_mut() {
                o.version = None;
            }
            m
        })
        .collect();
    coll.create_indexes(models).await?;
    Ok(coll)
}

pub async fn run(
    db: &mongodb::Database,
    indexes: &[IndexModel],
    batches: &[usize],
    writers: usize,
    secs: f64,
    size: usize,
) -> BenchResult<Vec<StoreResult>> {
    let mut results = Vec::new();
    let doc_bytes = bson::to_vec(&docs(0, &mut 0, 1, &"x".repeat(size))[0])?.len();
    for &batch in batches {
        let coll = fresh(db, "bench_store", indexes).await?;
        let count = std::sync::Arc::new(AtomicU64::new(0));
        let _progress = {
            let count = count.clone();
            Progress::every_second(format!("store, batches of {batch}"), move |t| {
                let n = count.load(Relaxed);
                format!("{n} documents stored, {:.0}/s", n as f64 / t)
            })
        };
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(secs);
        let content = "x".repeat(size);
        let work = (0..writers).map(|w| {
            let (coll, count, content) = (&coll, &*count, &content);
            async move {
                let mut seq = 0i64;
                while Instant::now() < deadline {
                    let docs = docs(w, &mut seq, batch, content);
                    if batch == 1 {
                        coll.insert_one(&docs[0]).await?;
                    } else {
                        coll.insert_many(&docs).await?;
                    }
                    count.fetch_add(batch as u64, Relaxed);
                }
                Ok::<(), mongodb::error::Error>(())
            }
        });
        for r in futures_util::future::join_all(work).await {
            r?;
        }
        let docs = count.load(Relaxed);
        results.push(StoreResult {
            batch,
            writers,
            docs,
            docs_per_s: docs as f64 / started.elapsed().as_secs_f64(),
            doc_bytes,
            indexes: describe(indexes),
        });
    }
    db.collection::<MessageDoc>("bench_store").drop().await?;
    Ok(results)
}

/// `batch` message documents of writer `w`'s conversation, seqs continuing from `seq`.
fn docs(w: usize, seq: &mut i64, batch: usize, content: &str) -> Vec<MessageDoc> {
    let now = DateTime::now();
    let (from, to) = (w as u64, 1_000_000 + w as u64);
    let retention_ms = ChatSettings::default().retention_secs as i64 * 1000;
    (0..batch)
        .map(|_| {
            *seq += 1;
            MessageDoc {
                id: ObjectId::new(),
                conv: conversation_id(from, to),
                seq: *seq,
                from: from as i64,
                to: Some(to as i64),
                group_id: None,
                kind: None,
                event: None,
                content: content.to_string(),
                created_at: now,
                expire_at: DateTime::from_millis(now.timestamp_millis() + retention_ms),
                read: false,
                client_msg_id: Some(format!("s{}", *seq)),
            }
        })
        .collect()
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupCommitResult {
    pub offered_per_s: f64,
    pub shards: usize,
    pub max_batch: usize,
    pub stored_per_s: f64,
    pub mean_batch: f64,
    /// arrival → insert acknowledged by the store, per document
    pub latency_us: Percentiles,
}

/// The store alone under the server's group commit: documents arrive at `rate`/s spread evenly
/// over `shards` writers; each writer inserts everything that has arrived (up to `max_batch`)
/// in one `insert_many`, one insert in flight per writer, as the server's committer does.
/// A document's latency runs from its arrival to its insert's acknowledgement: the floor
/// under the server's send → deliver latency at that load, without any network or WebSocket.
pub async fn group_commit(
    db: &mongodb::Database,
    indexes: &[IndexModel],
    rate: f64,
    shards: usize,
    max_batch: usize,
    secs: f64,
    size: usize,
) -> BenchResult<GroupCommitResult> {
    let coll = fresh(db, "bench_group_commit", indexes).await?;
    let content: std::sync::Arc<str> = "x".repeat(size).into();
    let started = Instant::now();
    let duration = Duration::from_secs_f64(secs);
    let rate = if rate.is_finite() { rate.clamp(1.0, 10_000_000.0) } else { 1.0 };
    let every = Duration::from_secs_f64(shards as f64 / rate);
    // one task per writer, as the server's committers are
    let work: Vec<_> = (0..shards)
        .map(|w| {
            let (coll, content) = (coll.clone(), content.clone());
            tokio::spawn(async move {
                let (mut hist, mut stored, mut inserts, mut seq, mut next) = (histogram(), 0u64, 0u64, 0i64, 0u64);
                // arrival k of this writer is due at started + offset + k * every
                let offset = every.mul_f64(w as f64 / shards as f64);
                let due = |k: u64| started + offset + every.mul_f64(k as f64);
                while due(next) - started < duration {
                    let now = Instant::now();
                    if due(next) > now {
                        tokio::time::sleep_until(due(next).into()).await;
                        continue;
                    }
                    let mut n = 0;
                    while n < max_batch as u64 && due(next + n) <= now && due(next + n) - started < duration {
                        n += 1;
                    }
                    coll.insert_many(docs(w, &mut seq, n as usize, &content)).await?;
                    let done = Instant::now();
                    for k in next..next + n {
                        hist.saturating_record((done - due(k)).as_micros().max(1) as u64);
                    }
                    next += n;
                    stored += n;
                    inserts += 1;
                }
                Ok::<_, mongodb::error::Error>((hist, stored, inserts))
            })
        })
        .collect();
    let (mut all, mut stored, mut inserts) = (histogram(), 0, 0);
    for r in futures_util::future::join_all(work).await {
        let (h, s, i) = r??;
        all.add(h)?;
        stored += s;
        inserts += i;
    }
    let elapsed = started.elapsed().as_secs_f64();
    coll.drop().await?;
    Ok(GroupCommitResult {
        offered_per_s: rate,
        shards,
        max_batch,
        stored_per_s: stored as f64 / elapsed,
        mean_batch: stored as f64 / inserts.max(1) as f64,
        latency_us: Percentiles::of(&all),
    })
}
