//! Users in MySQL.

use chat_model::{NewUser, User, schema::users, user::STATUS_ACTIVE};
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _,
    result::{DatabaseErrorKind, Error as DieselError},
    sql_types::{BigInt, Unsigned},
};
use diesel_async::RunQueryDsl as _;

use crate::{
    error::{Calls, DaoError, DaoResult},
    mysql::{MysqlPool, conn},
};

#[derive(Clone)]
pub struct UserDao {
    pool: MysqlPool,
    calls: Calls,
}

impl UserDao {
    pub(crate) fn new(pool: MysqlPool, calls: Calls) -> Self {
        UserDao { pool, calls }
    }

    /// Inserts a user and returns its id; [`DaoError::Duplicate`] if the user name is taken.
    pub async fn insert(&self, new: &NewUser) -> DaoResult<u64> {
        let mut c = conn(&self.pool).await?;
        match self.calls.run(diesel::insert_into(users::table).values(new).execute(&mut c)).await {
            Ok(_) => {}
            Err(DaoError::Mysql(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))) => {
                return Err(DaoError::Duplicate);
            }
            Err(e) => return Err(e),
        }
        let last_id = diesel::select(diesel::dsl::sql::<Unsigned<BigInt>>("LAST_INSERT_ID()"));
        self.calls.run(last_id.get_result::<u64>(&mut c)).await
    }

    /// A user that is not deleted, by name (without regard to case).
    pub async fn find_by_name(&self, user_name: &str) -> DaoResult<Option<User>> {
        let mut c = conn(&self.pool).await?;
        let query = users::table
            .filter(users::user_name.eq(user_name))
            .filter(users::deleted_at.is_null())
            .select(User::as_select());
        self.calls.run(async { query.first(&mut c).await.optional() }).await
    }

    /// Sets a user's status (not a deleted one's); true if there was such a user.
    pub async fn set_status(&self, id: u64, status: i8) -> DaoResult<bool> {
        let mut c = conn(&self.pool).await?;
        let target = users::table.filter(users::id.eq(id)).filter(users::deleted_at.is_null());
        let now = chrono::Utc::now().naive_utc();
        let query = diesel::update(target).set((users::status.eq(status), users::updated_at.eq(now)));
        Ok(self.calls.run(query.execute(&mut c)).await? > 0)
    }

    /// Deletes a user softly: `deleted_at` is set and the account disabled; the row stays, so
    /// its name stays taken and its messages keep their sender. True if it was not deleted yet.
    pub async fn soft_delete(&self, id: u64, disabled: i8) -> DaoResult<bool> {
        let mut c = conn(&self.pool).await?;
        let target = users::table.filter(users::id.eq(id)).filter(users::deleted_at.is_null());
        let now = chrono::Utc::now().naive_utc();
        let query = diesel::update(target).set((
            users::status.eq(disabled),
            users::deleted_at.eq(Some(now)),
            users::updated_at.eq(now),
        ));
        Ok(self.calls.run(query.execute(&mut c)).await? > 0)
    }

    /// A user that is not deleted, by id.
    pub async fn find_by_id(&self, id: u64) -> DaoResult<Option<User>> {
        let mut c = conn(&self.pool).await?;
        let query = users::table.filter(users::id.eq(id)).filter(users::deleted_at.is_null()).select(User::as_select());
        self.calls.run(async { query.first(&mut c).await.optional() }).await
    }

    /// The users (not deleted) among `ids`.
    pub async fn find_by_ids(&self, ids: &[u64]) -> DaoResult<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = conn(&self.pool).await?;
        let query =
            users::table.filter(users::id.eq_any(ids)).filter(users::deleted_at.is_null()).select(User::as_select());
        self.calls.run(query.load(&mut c)).await
    }

    /// Those of `ids` whose accounts may be used (active, not deleted).
    pub async fn active_among(&self, ids: &[u64]) -> DaoResult<Vec<u64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = conn(&self.pool).await?;
        let query = users::table
            .filter(users::id.eq_any(ids))
            .filter(users::status.eq(STATUS_ACTIVE))
            .filter(users::deleted_at.is_null())
            .select(users::id);
        self.calls.run(query.load(&mut c)).await
    }
}
