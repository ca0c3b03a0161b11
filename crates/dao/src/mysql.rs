//! MySQL (or MariaDB): the pool, the database, the embedded migrations.

use std::time::Duration;

use chat_model::config::MysqlSettings;
use diesel::sql_types::{Integer, Nullable};
use diesel_async::{
    AsyncConnection, AsyncMysqlConnection, RunQueryDsl as _,
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, deadpool::Pool},
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::{DaoError, DaoResult};

pub type MysqlPool = Pool<AsyncMysqlConnection>;

/// The migrations in `crates/dao/migrations`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Splits `mysql://…/db` into the server URL (no database) and the database name.
pub fn split_database(url: &str) -> DaoResult<(String, String)> {
    let mut parsed = url::Url::parse(url).map_err(|e| DaoError::Config(format!("mysql.url: {e}")))?;
    let db = parsed.path().trim_start_matches('/').to_string();
    if db.is_empty() || !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(DaoError::Config("mysql.url must name a database of letters, digits and _".into()));
    }
    parsed.set_path("");
    Ok((parsed.to_string(), db))
}

/// Creates the database named in the URL if it does not exist.
pub async fn ensure_database(url: &str) -> DaoResult<()> {
    let (server, db) = split_database(url)?;
    let mut conn = <AsyncMysqlConnection as AsyncConnection>::establish(&server)
        .await
        .map_err(|e| DaoError::MysqlConnect(e.to_string()))?;
    diesel::sql_query(format!("CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Drops the database named in the URL (tests).
pub async fn drop_database(url: &str) -> DaoResult<()> {
    let (server, db) = split_database(url)?;
    let mut conn = <AsyncMysqlConnection as AsyncConnection>::establish(&server)
        .await
        .map_err(|e| DaoError::MysqlConnect(e.to_string()))?;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS `{db}`")).execute(&mut conn).await?;
    Ok(())
}

/// Applies the pending migrations, holding a MySQL named lock so that processes starting
/// together apply them once.
pub async fn run_migrations(url: &str) -> DaoResult<()> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || -> DaoResult<()> {
        type Wrapper = AsyncConnectionWrapper<AsyncMysqlConnection>;
        let mut conn =
            <Wrapper as diesel::Connection>::establish(&url).map_err(|e| DaoError::MysqlConnect(e.to_string()))?;
        let lock = |sql: &str, conn: &mut Wrapper| {
            diesel::RunQueryDsl::get_result::<Option<i32>>(
                diesel::select(diesel::dsl::sql::<Nullable<Integer>>(sql)),
                conn,
            )
        };
        if lock("GET_LOCK('chat_migrations', 60)", &mut conn)? != Some(1) {
            return Err(DaoError::Migration("another process held the migration lock for 60 s".into()));
        }
        let applied =
            conn.run_pending_migrations(MIGRATIONS).map(|_| ()).map_err(|e| DaoError::Migration(e.to_string()));
        let _ = lock("RELEASE_LOCK('chat_migrations')", &mut conn);
        applied
    })
    .await
    .map_err(|e| DaoError::Migration(e.to_string()))?
}

/// Creates the database if needed, migrates it, and builds the pool.
pub async fn connect(settings: &MysqlSettings) -> DaoResult<MysqlPool> {
    ensure_database(&settings.url).await?;
    run_migrations(&settings.url).await?;
    pool(settings)
}

/// The pool alone, with wait, create and recycle timeouts.
pub fn pool(settings: &MysqlSettings) -> DaoResult<MysqlPool> {
    let manager = AsyncDieselConnectionManager::<AsyncMysqlConnection>::new_with_config(
        settings.url.clone(),
        ManagerConfig::default(),
    );
    let timeout = Some(Duration::from_millis(settings.timeout_ms));
    Pool::builder(manager)
        .max_size(settings.pool_size.max(1))
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| DaoError::Config(e.to_string()))
}

/// Takes a connection from the pool.
pub(crate) async fn conn(
    pool: &MysqlPool,
) -> DaoResult<deadpool::managed::Object<AsyncDieselConnectionManager<AsyncMysqlConnection>>> {
    pool.get().await.map_err(|e| DaoError::MysqlConnect(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_database_off() {
        let (server, db) = split_database("mysql://root:pw@127.0.0.1:3306/chat_test_1").unwrap();
        assert_eq!(db, "chat_test_1");
        assert_eq!(server, "mysql://root:pw@127.0.0.1:3306");
        assert!(split_database("mysql://root@127.0.0.1:3306/").is_err());
        assert!(split_database("mysql://root@127.0.0.1:3306/a;drop").is_err());
    }
}
