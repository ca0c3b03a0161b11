//! Conversations in MongoDB: one small document per conversation, `conversations`, that
//! outlives its messages. It keeps the highest seq ever given, so that seq numbers keep rising
//! after the TTL index has removed the newest messages (or all of them).

use bson::{Document, doc};
use mongodb::{Collection, Database, options::UpdateOptions};

use crate::error::{DaoResult, Store, within};

pub const COLLECTION: &str = "conversations";

#[derive(Clone)]
pub struct ConversationDao {
    coll: Collection<Document>,
    timeout_ms: u64,
}

impl ConversationDao {
    pub fn new(db: &Database, timeout_ms: u64) -> Self {
        ConversationDao { coll: db.collection(COLLECTION), timeout_ms }
    }

    /// The highest seq recorded for the conversation, 0 if none.
    pub async fn last_seq(&self, conv: &str) -> DaoResult<i64> {
        let d = within(
            Store::Mongo,
            self.timeout_ms,
            self.coll.find_one(doc! { "_id": conv }).projection(doc! { "last_seq": 1 }),
        )
        .await?;
        Ok(d.and_then(|d| d.get_i64("last_seq").ok()).unwrap_or(0))
    }

    /// Raises the recorded seq to `seq` (never lowers it).
    pub async fn record_seq(&self, conv: &str, seq: i64) -> DaoResult<()> {
        within(
            Store::Mongo,
            self.timeout_ms,
            self.coll
                .update_one(doc! { "_id": conv }, doc! { "$max": { "last_seq": seq } })
                .with_options(UpdateOptions::builder().upsert(true).build()),
        )
        .await
        .map(|_| ())
    }
}
