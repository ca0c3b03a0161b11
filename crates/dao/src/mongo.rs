//! MongoDB: the client and database handle.

use std::time::Duration;

use chat_model::config::MongoSettings;
use mongodb::{Client, Database, options::ClientOptions};

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
