//! Per-user rates, counted by each process for its own traffic (GCRA, the `governor` crate):
//! sends per second with a burst, and requests to the reading routes. Kept in memory so that a
//! flood is refused without any store call, even while the stores are down. A user spread over
//! N processes gets N times the rate; the login and register throttles, which must hold
//! across processes, are counted in Redis instead ([`crate::register`]).

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use chat_model::Target;
use chat_model::config::LimitSettings;
use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock as _, DefaultClock},
};

use crate::{
    error::{ServiceError, ServiceResult},
    metrics::Metrics,
};

#[derive(Clone)]
pub struct Limits {
    sends: Option<Arc<DefaultKeyedRateLimiter<u64>>>,
    reads: Option<Arc<DefaultKeyedRateLimiter<u64>>>,
    /// Typing events forwarded, per (typist, conversation).
    typing: Arc<DefaultKeyedRateLimiter<(u64, Target)>>,
    clock: DefaultClock,
    metrics: Metrics,
}

/// At most one typing event per user and conversation is forwarded in this time.
pub const TYPING_EVERY: Duration = Duration::from_secs(2);

/// A limiter for `per_sec` with `burst`; none when the rate is 0 (no limit).
fn limiter(per_sec: u32, burst: u32) -> Option<Arc<DefaultKeyedRateLimiter<u64>>> {
    let rate = NonZeroU32::new(per_sec)?;
    let burst = NonZeroU32::new(burst.max(per_sec)).unwrap_or(rate);
    Some(Arc::new(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))))
}

impl Limits {
    pub fn new(settings: &LimitSettings, metrics: Metrics) -> Self {
        Limits {
            sends: limiter(settings.sends_per_sec, settings.send_burst),
            reads: limiter(settings.reads_per_sec, settings.read_burst),
            typing: Arc::new(RateLimiter::keyed(
                Quota::with_period(TYPING_EVERY).unwrap_or(Quota::per_second(NonZeroU32::MIN)),
            )),
            clock: DefaultClock::default(),
            metrics,
        }
    }

    /// One send of `user`; refused when over the rate.
    pub fn send(&self, user: u64) -> ServiceResult<()> {
        self.check(self.sends.as_deref(), user, "sends")
    }

    /// One request of `user` to a reading route; refused when over the rate.
    pub fn read(&self, user: u64) -> ServiceResult<()> {
        self.check(self.reads.as_deref(), user, "reads")
    }

    /// Whether a typing event of `user` in the conversation is forwarded: one per
    /// [`TYPING_EVERY`], the others dropped.
    pub fn typing(&self, user: u64, target: Target) -> bool {
        self.typing.check_key(&(user, target)).is_ok()
    }

    /// Forgets the users whose allowance is full again (their state is the default).
    pub fn forget_idle(&self) {
        for l in [&self.sends, &self.reads].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
        self.typing.retain_recent();
        self.typing.shrink_to_fit();
    }

    fn check(
        &self,
        limiter: Option<&DefaultKeyedRateLimiter<u64>>,
        user: u64,
        name: &'static str,
    ) -> ServiceResult<()> {
        let Some(limiter) = limiter else { return Ok(()) };
        limiter.check_key(&user).map_err(|not_until| {
            self.metrics.throttle(name);
            let wait = not_until.wait_time_from(self.clock.now());
            ServiceError::RateLimited { retry_after_ms: (wait.as_millis() as u64).max(1) }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let settings = LimitSettings { sends_per_sec: 2, send_burst: 5, ..LimitSettings::default() };
        let limits = Limits::new(&settings, Metrics::default());
        for _ in 0..5 {
            limits.send(1).unwrap();
        }
        match limits.send(1) {
            Err(ServiceError::RateLimited { retry_after_ms }) => assert!((1..=500).contains(&retry_after_ms)),
            other => panic!("expected the rate limit, got {other:?}"),
        }
        // another user has an allowance of their own
        limits.send(2).unwrap();
        let off = Limits::new(&LimitSettings { sends_per_sec: 0, ..settings }, Metrics::default());
        for _ in 0..1000 {
            off.send(1).unwrap();
        }
    }
}
