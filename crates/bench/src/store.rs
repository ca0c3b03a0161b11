//! `store`: MongoDB's own insert ceiling on this machine, with the message document's shape
//! and indexes, in batches of 1, 100 and 500, measured in the same run as the server.

use std::{
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::{Duration, Instant},
};

use bson::{DateTime, doc, oid::ObjectId};
use chat_model::MessageDoc;
use mongodb::Collection;

use crate::client::BenchResult;

#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreResult {
    pub batch: usize,
    pub writers: usize,
    pub docs: u64,
    pub docs_per_s: f64,
}

pub async fn run(
    db: &mongodb::Database,
    batches: &[usize],
    writers: usize,
    secs: f64,
    size: usize,
) -> BenchResult<Vec<StoreResult>> {
    let coll: Collection<MessageDoc> = db.collection("bench_store");
    let mut results = Vec::new();
    for &batch in batches {
        coll.drop().await?;
        coll.create_indexes(chat_dao::message::index_models()).await?;
        let count = AtomicU64::new(0);
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(secs);
        let content = "x".repeat(size);
        let work = (0..writers).map(|w| {
            let (coll, count, content) = (&coll, &count, &content);
            async move {
                let mut seq = 0i64;
                while Instant::now() < deadline {
                    let now = DateTime::now();
                    let docs: Vec<MessageDoc> = (0..batch)
                        .map(|_| {
                            seq += 1;
                            MessageDoc {
                                id: ObjectId::new(),
                                conv: format!("{w}:{}", 1_000_000 + w),
                                seq,
                                from: w as i64,
                                to: 1_000_000 + w as i64,
                                content: content.clone(),
                                created_at: now,
                                expire_at: DateTime::from_millis(now.timestamp_millis() + 7_776_000_000),
                                read: false,
                                delivered: false,
                                client_msg_id: Some(format!("s{seq}")),
                            }
                        })
                        .collect();
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
        results.push(StoreResult { batch, writers, docs, docs_per_s: docs as f64 / started.elapsed().as_secs_f64() });
    }
    coll.drop().await?;
    Ok(results)
}
