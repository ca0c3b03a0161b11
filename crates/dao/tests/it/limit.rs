use chat_dao::LimitOutcome::{Counted, Refused};

use crate::daos;

trait One {
    async fn check_and_count(
        &self,
        from: u64,
        to: u64,
        limit: u32,
        ttl: u64,
    ) -> chat_dao::DaoResult<chat_dao::LimitOutcome>;
    async fn uncount(&self, from: u64, to: u64) -> chat_dao::DaoResult<()>;
}

impl One for chat_dao::LimitDao {
    async fn check_and_count(
        &self,
        from: u64,
        to: u64,
        limit: u32,
        ttl: u64,
    ) -> chat_dao::DaoResult<chat_dao::LimitOutcome> {
        Ok(self.check_and_count_many(&[(from, to)], limit, ttl).await?[0])
    }
    async fn uncount(&self, from: u64, to: u64) -> chat_dao::DaoResult<()> {
        self.uncount_many(&[(from, to)]).await
    }
}

#[tokio::test]
async fn refuses_after_the_limit_until_the_peer_answers() {
    let (_ts, _stores, daos) = daos().await;
    let l = &daos.limit;
    for n in 1..=3 {
        assert_eq!(l.check_and_count(1, 2, 3, 3600).await.unwrap(), Counted(n));
    }
    assert_eq!(l.check_and_count(1, 2, 3, 3600).await.unwrap(), Refused);
    assert_eq!(l.check_and_count(1, 2, 3, 3600).await.unwrap(), Refused);
    // the peer answers: the limit is lifted both ways
    assert_eq!(l.check_and_count(2, 1, 3, 3600).await.unwrap(), Counted(1));
    assert_eq!(l.check_and_count(1, 2, 3, 3600).await.unwrap(), Counted(4));
}

#[tokio::test]
async fn compares_counts_as_numbers() {
    let (_ts, _stores, daos) = daos().await;
    // as strings "10" < "3"; as numbers a limit of 10 must allow exactly ten
    for n in 1..=10 {
        assert_eq!(daos.limit.check_and_count(5, 6, 10, 3600).await.unwrap(), Counted(n));
    }
    assert_eq!(daos.limit.check_and_count(5, 6, 10, 3600).await.unwrap(), Refused);
}

#[tokio::test]
async fn uncount_gives_back_a_send() {
    let (_ts, _stores, daos) = daos().await;
    for _ in 0..3 {
        daos.limit.check_and_count(3, 4, 3, 3600).await.unwrap();
    }
    daos.limit.uncount(3, 4).await.unwrap();
    assert_eq!(daos.limit.check_and_count(3, 4, 3, 3600).await.unwrap(), Counted(3));
    // never below zero
    daos.limit.uncount(9, 10).await.unwrap();
    assert_eq!(daos.limit.check_and_count(9, 10, 3, 3600).await.unwrap(), Counted(1));
}

#[tokio::test]
async fn an_answer_taken_back_is_no_answer() {
    let (_ts, _stores, daos) = daos().await;
    // the peer's only send failed to store, and its count was taken back
    assert_eq!(daos.limit.check_and_count(2, 1, 3, 3600).await.unwrap(), Counted(1));
    daos.limit.uncount(2, 1).await.unwrap();
    for n in 1..=3 {
        assert_eq!(daos.limit.check_and_count(1, 2, 3, 3600).await.unwrap(), Counted(n));
    }
    assert_eq!(daos.limit.check_and_count(1, 2, 3, 3600).await.unwrap(), Refused);
}
