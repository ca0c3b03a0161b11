//! Conversations in MongoDB: one small document per conversation, `conversations`:
//! `{_id: conv, users: [low, high], last_seq, last_at}`. It outlives its messages, so seq
//! numbers keep rising after the TTL index removed the newest messages (or all of them), and
//! it lists a user's conversations, newest first, without scanning the messages.

use bson::{DateTime, Document, doc};
use mongodb::{Collection, Database, IndexModel, options::IndexOptions, options::UpdateOptions};

use crate::{
    error::{DaoResult, Store, within},
    mongo::{by_id, collect},
};

pub const COLLECTION: &str = "conversations";

/// A conversation's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationSummary {
    pub conv: String,
    pub users: Vec<i64>,
    pub last_seq: i64,
    pub last_at: DateTime,
}

#[derive(Clone)]
pub struct ConversationDao {
    coll: Collection<Document>,
    timeout_ms: u64,
}

impl ConversationDao {
    pub fn new(db: &Database, timeout_ms: u64) -> Self {
        ConversationDao { coll: db.collection(COLLECTION), timeout_ms }
    }

    pub async fn ensure_indexes(&self) -> DaoResult<()> {
        let model = IndexModel::builder()
            .keys(doc! { "users": 1, "last_at": -1 })
            .options(IndexOptions::builder().name("users_last_at".to_string()).build())
            .build();
        within(Store::Mongo, self.timeout_ms * 4, self.coll.create_index(model)).await.map(|_| ())
    }

    /// The recorded seq of each of `convs` that has a summary.
    pub async fn last_seqs(&self, convs: &[String]) -> DaoResult<std::collections::HashMap<String, i64>> {
        if convs.is_empty() {
            return Ok(Default::default());
        }
        let query = self.coll.find(doc! { "_id": { "$in": convs } }).projection(doc! { "last_seq": 1 });
        Ok(by_id(collect(self.timeout_ms, query).await?, "last_seq"))
    }

    /// Records a stored message: raises `last_seq` and `last_at` (never lowers them, so
    /// records arriving out of order are harmless).
    pub async fn record(&self, conv: &str, users: [i64; 2], seq: i64, at: DateTime) -> DaoResult<()> {
        within(
            Store::Mongo,
            self.timeout_ms,
            self.coll
                .update_one(
                    doc! { "_id": conv },
                    doc! {
                        "$max": { "last_seq": seq, "last_at": at },
                        "$setOnInsert": { "users": [users[0], users[1]] },
                    },
                )
                .with_options(UpdateOptions::builder().upsert(true).build()),
        )
        .await
        .map(|_| ())
    }

    /// The user's conversations, the most recently active first.
    pub async fn list_for(&self, user: i64, limit: i64) -> DaoResult<Vec<ConversationSummary>> {
        let query = self.coll.find(doc! { "users": user }).sort(doc! { "last_at": -1 }).limit(limit);
        let docs = collect(self.timeout_ms, query).await?;
        Ok(docs
            .into_iter()
            .filter_map(|d| {
                Some(ConversationSummary {
                    conv: d.get_str("_id").ok()?.to_string(),
                    users: d.get_array("users").ok()?.iter().filter_map(|u| u.as_i64()).collect(),
                    last_seq: d.get_i64("last_seq").ok()?,
                    last_at: *d.get_datetime("last_at").ok()?,
                })
            })
            .collect())
    }
}
