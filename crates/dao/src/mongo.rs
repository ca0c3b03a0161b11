//! MongoDB: the client and database handle.

use std::time::Duration;

use chat_model::config::MongoSettings;
use std::collections::HashMap;

use bson::Document;
use futures_util::TryStreamExt as _;
use mongodb::{Client, Cursor, Database, options::ClientOptions};
use serde::de::DeserializeOwned;

use crate::error::{DaoError, DaoResult, Store, within};

pub async fn connect(settings: &MongoSettings) -> DaoResult<Database> {
    let timeout = Duration::from_millis(settings.timeout_ms);
    let mut opts = within(Store::Mongo, settings.timeout_ms, ClientOptions::parse(&settings.url)).await?;
    opts.app_name = Some("chat".into());
    opts.server_selection_timeout = Some(timeout);
    opts.connect_timeout = Some(timeout);
    let client = Client::with_options(opts)?;
    if settings.database.is_empty() {
        return Err(DaoError::Config("mongo.database is empty".into()));
    }
    Ok(client.database(&settings.database))
}

/// Whether a MongoDB error is a unique index refusing a write (E11000).
pub fn is_duplicate(err: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(we)) => we.code == 11000,
        ErrorKind::Command(ce) => ce.code == 11000,
        ErrorKind::InsertMany(im) => im.write_errors.as_ref().is_some_and(|ws| ws.iter().any(|w| w.code == 11000)),
        _ => false,
    }
}

/// Runs a find or aggregate and collects its documents, under a deadline.
pub(crate) async fn collect<T, Q>(timeout_ms: u64, query: Q) -> DaoResult<Vec<T>>
where
    T: DeserializeOwned + Send + Sync + Unpin,
    Q: IntoFuture<Output = mongodb::error::Result<Cursor<T>>>,
{
    within(Store::Mongo, timeout_ms, async { query.await?.try_collect().await }).await
}

/// `{_id: <string>, <field>: <integer>}` documents as a map.
pub(crate) fn by_id(docs: Vec<Document>, field: &str) -> HashMap<String, i64> {
    docs.into_iter()
        .filter_map(|d| {
            let n = d.get_i64(field).ok().or_else(|| d.get_i32(field).ok().map(i64::from))?;
            Some((d.get_str("_id").ok()?.to_string(), n))
        })
        .collect()
}
