//! The conditions of a run, recorded in every JSON line and printed once at the start: what was
//! measured (commit, builds), on what (cores, load before the run) and against which stores
//! (versions, whether the message store's acknowledgements wait for the disk).
//!
//! `scripts/bench.sh` passes what only it knows in `CHAT_BENCH_*` variables: the server's build,
//! the MongoDB server's command line, the versions of Redis and MariaDB.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Conditions {
    /// `git describe --always --dirty` of the working directory
    pub git_commit: String,
    /// the server's build, as bench.sh made it (e.g. `release, mimalloc`)
    pub server_build: String,
    /// this benchmark's own build
    pub bench_build: &'static str,
    pub cores: usize,
    /// 1, 5 and 15 minute load averages when the run started
    pub load_avg_before: [f64; 3],
    pub store: StoreConditions,
    pub redis_version: String,
    pub mysql_version: String,
    pub at_unix: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoreConditions {
    /// what the MongoDB server says of itself (`buildInfo`: the protocol's version for
    /// SecantusDB)
    pub version: String,
    /// the server binary's own `--version`, where bench.sh could run it
    pub binary: String,
    /// the MongoDB server's command line, where bench.sh could find its process
    pub command: String,
    /// whether an acknowledged write is on disk: the write concern waits for the journal and
    /// the server honours it (SecantusDB only with `--sync-on-commit`); None: not known
    pub durable: Option<bool>,
    /// the write concern of the server and of the store probes, e.g. `{w: majority, j: true}`
    pub write_concern: String,
}

fn var(name: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| "unknown".into())
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn load_avg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text.split_whitespace().map(|v| v.parse().unwrap_or(f64::NAN));
    [it.next().unwrap_or(f64::NAN), it.next().unwrap_or(f64::NAN), it.next().unwrap_or(f64::NAN)]
}

/// Whether acknowledged writes are on disk, from the write concern and the store's command line.
fn durable(journal: bool, command: &str) -> Option<bool> {
    if !journal {
        return Some(false);
    }
    if command.contains("secantusd") {
        // SecantusDB acknowledges j:true before its flush unless told otherwise (measured)
        Some(command.contains("--sync-on-commit"))
    } else if command.contains("mongod") {
        // mongod honours j:true unless journaling is off (not possible since MongoDB 6.1)
        Some(!command.contains("--nojournal"))
    } else {
        None
    }
}

impl Conditions {
    pub async fn collect(mongo: &mongodb::Database, write_concern: &mongodb::options::WriteConcern) -> Self {
        let version = match mongo.run_command(bson::doc! { "buildInfo": 1 }).await {
            Ok(d) => d.get_str("version").unwrap_or("unknown").to_string(),
            Err(e) => format!("unknown ({e})"),
        };
        let command = var("CHAT_BENCH_STORE_COMMAND");
        let journal = write_concern.journal.unwrap_or(false);
        let w = match &write_concern.w {
            Some(mongodb::options::Acknowledgment::Nodes(n)) => n.to_string(),
            Some(mongodb::options::Acknowledgment::Majority) => "majority".into(),
            Some(mongodb::options::Acknowledgment::Custom(tag)) => tag.clone(),
            _ => "default".into(),
        };
        Conditions {
            git_commit: git_commit(),
            server_build: var("CHAT_BENCH_SERVER_BUILD"),
            bench_build: if cfg!(debug_assertions) { "debug" } else { "release" },
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            load_avg_before: load_avg(),
            store: StoreConditions {
                version,
                binary: var("CHAT_BENCH_STORE_BINARY"),
                durable: durable(journal, &command),
                command,
                write_concern: format!("{{w: {w}, j: {journal}}}"),
            },
            redis_version: var("CHAT_BENCH_REDIS_VERSION"),
            mysql_version: var("CHAT_BENCH_MYSQL_VERSION"),
            at_unix: crate::client::now_ns() / 1_000_000_000,
        }
    }

    pub fn print(&self) {
        let durable = match self.store.durable {
            Some(true) => "durable: acknowledged writes are on disk",
            Some(false) => "NOT durable: acknowledged writes may be only in memory",
            None => "durability not known",
        };
        println!("== conditions");
        println!(
            "commit {}; server {}; benchmark {}; {} cores; load average before the run {:.2} {:.2} {:.2}",
            self.git_commit,
            self.server_build,
            self.bench_build,
            self.cores,
            self.load_avg_before[0],
            self.load_avg_before[1],
            self.load_avg_before[2]
        );
        println!(
            "MongoDB {} ({}: {}), write concern {}, {durable}; Redis {}; MySQL {}",
            self.store.version,
            self.store.binary,
            self.store.command,
            self.store.write_concern,
            self.redis_version,
            self.mysql_version
        );
        if self.load_avg_before[0] > self.cores as f64 / 2.0 {
            println!(
                "   !! the machine was busy before the run (load {:.2}): figures may be low",
                self.load_avg_before[0]
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::durable;

    #[test]
    fn durability_follows_the_write_concern_and_the_store_flags() {
        let secantus = "/root/.cargo/bin/secantusd-rs --port 27017 --storage-path /x";
        assert_eq!(durable(true, &format!("{secantus} --sync-on-commit")), Some(true));
        assert_eq!(durable(true, secantus), Some(false));
        assert_eq!(durable(false, &format!("{secantus} --sync-on-commit")), Some(false));
        assert_eq!(durable(true, "mongod --bind_ip_all"), Some(true));
        assert_eq!(durable(true, "unknown"), None);
    }
}
