//! The faults, in turn, each followed by a time to recover.

use std::time::{Duration, Instant};

use chat_testkit::proxy::Mode;
use nix::sys::signal::Signal;

use crate::{
    env::Env,
    procs::{DrillResult, wait_port},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Redis killed and started again empty (it keeps nothing on disk).
    RedisRestart,
    /// MongoDB stopped (SIGSTOP) for a while: every call to it hangs.
    MongoFreeze,
    /// MongoDB killed (`kill -9`), then started again on the same data.
    MongoKill,
    /// MySQL unreachable: every connection cut, new ones refused.
    MysqlCut,
    /// The chat server asked to stop (SIGTERM), then started again.
    ServerTerm,
    /// The chat server killed (SIGKILL), then started again.
    ServerKill,
}

pub const ALL: [Fault; 6] =
    [Fault::RedisRestart, Fault::MongoFreeze, Fault::MongoKill, Fault::MysqlCut, Fault::ServerTerm, Fault::ServerKill];

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::RedisRestart => "redis killed, restarted empty",
            Fault::MongoFreeze => "mongodb frozen 6 s",
            Fault::MongoKill => "mongodb kill -9, restarted",
            Fault::MysqlCut => "mysql unreachable 6 s",
            Fault::ServerTerm => "server SIGTERM, restarted",
            Fault::ServerKill => "server SIGKILL, restarted",
        }
    }

    /// Breaks what the fault names and mends it; returns when it is mended.
    pub async fn run(self, env: &mut Env) -> DrillResult<()> {
        const OUTAGE: Duration = Duration::from_secs(6);
        match self {
            Fault::RedisRestart => {
                env.redis.stop_with(Signal::SIGKILL, Duration::from_secs(5))?;
                env.redis.start()?;
                wait_port(env.redis_port, Duration::from_secs(10)).await
            }
            Fault::MongoFreeze => {
                env.mongo.signal(Signal::SIGSTOP)?;
                tokio::time::sleep(OUTAGE).await;
                env.mongo.signal(Signal::SIGCONT)
            }
            Fault::MongoKill => {
                env.mongo.stop_with(Signal::SIGKILL, Duration::from_secs(5))?;
                tokio::time::sleep(Duration::from_secs(3)).await;
                env.mongo.start()?;
                wait_port(env.mongo_port, Duration::from_secs(30)).await
            }
            Fault::MysqlCut => {
                env.mysql.set(Mode::Refuse);
                tokio::time::sleep(OUTAGE).await;
                env.mysql.set(Mode::Pass);
                Ok(())
            }
            Fault::ServerTerm => {
                let took = env.servers[0].stop_with(Signal::SIGTERM, Duration::from_secs(30))?;
                env.notes.push(format!("SIGTERM: the server drained and exited in {} ms", took.as_millis()));
                env.start_node(0).await
            }
            Fault::ServerKill => {
                env.servers[0].stop_with(Signal::SIGKILL, Duration::from_secs(5))?;
                env.start_node(0).await
            }
        }
    }
}

/// When a fault began and ended, and until when its aftermath counts.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub fault: Fault,
    pub start: Instant,
    pub end: Instant,
    pub until: Instant,
}

impl Window {
    pub fn holds(&self, t: Instant) -> bool {
        t >= self.start && t < self.until
    }
}
