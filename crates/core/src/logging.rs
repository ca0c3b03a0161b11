//! The root logger: records on the terminal (human-readable lines on stderr, or JSON lines on
//! stdout with `log.format: json`) and JSON lines in `<dir>/<file>`, duplicated, filtered by
//! level, written by a background thread (slog-async). Keep the returned guard alive: dropping
//! it flushes the queue.
//!
//! actix-web and actix-server log through the `log` facade (actix-server through `tracing`,
//! whose `log` feature hands its events to `log` when no subscriber is installed, as here):
//! slog-stdlog's bridge (set once, for the life of the process) sends their records to the
//! same drains, with `"source": "actix"`.

use std::{fs::OpenOptions, path::Path, sync::Mutex};

use chat_model::config::{LogFormat, LogSettings};
use slog::{Drain, Level, Logger, o};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log level {0:?} is not one of trace, debug, info, warning, error, critical")]
    Level(String),
    #[error("log file {0}: {1}")]
    File(String, std::io::Error),
    #[error("logging is off: log.terminal is false and log.dir is empty, so nothing would be written anywhere")]
    NoSink,
}

pub struct LogGuard {
    _queue: slog_async::AsyncGuard,
}

type Sink = Box<dyn Drain<Ok = (), Err = slog::Never> + Send>;

fn terminal(format: LogFormat) -> Sink {
    match format {
        LogFormat::Text => {
            let decorator = slog_term::TermDecorator::new().stderr().build();
            Box::new(slog_term::FullFormat::new(decorator).build().fuse())
        }
        LogFormat::Json => Box::new(Mutex::new(json(std::io::stdout())).fuse()),
    }
}

/// JSON lines with the time, the level and the message first.
fn json<W: std::io::Write>(w: W) -> slog_json::Json<W> {
    slog_json::Json::new(w).add_default_keys().build()
}

/// The root logger of the server. A configuration that writes nowhere is an error: a server
/// that cannot say why it fails is worse than one that does not start.
pub fn build(settings: &LogSettings, base: &Path) -> Result<(Logger, LogGuard), LogError> {
    let level: Level = match settings.level.as_str() {
        "warn" => Level::Warning,
        other => other.parse().map_err(|_| LogError::Level(settings.level.clone()))?,
    };
    let term = settings.terminal.then(|| terminal(settings.format));
    let file = if settings.dir.is_empty() {
        None
    } else {
        let dir = base.join(&settings.dir);
        let path = dir.join(&settings.file);
        std::fs::create_dir_all(&dir).map_err(|e| LogError::File(dir.display().to_string(), e))?;
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| LogError::File(path.display().to_string(), e))?;
        Some(Mutex::new(json(f)).fuse())
    };
    let drain: Sink = match (term, file) {
        (None, None) => return Err(LogError::NoSink),
        (Some(t), None) => t,
        (None, Some(f)) => Box::new(f),
        (Some(t), Some(f)) => Box::new(slog::Duplicate::new(t, f).fuse()),
    };
    let (drain, queue) = slog_async::Async::new(drain).chan_size(4096).build_with_guard();
    // a record after the queue closed (late in a shutdown) is dropped, not a panic
    let root = Logger::root(
        drain.filter_level(level).ignore_res(),
        o!("app" => "chat", "version" => env!("CARGO_PKG_VERSION")),
    );
    // `log` is a process-wide facade: the bridge is set once, by the binary (tests build their
    // loggers without it), and stays for the life of the process (slog-scope's reset on drop
    // would leave a logger that panics on the records of the last moments)
    slog_scope::set_global_logger(root.new(o!("source" => "actix"))).cancel_reset();
    let _ = slog_stdlog::init_with_level(std_level(level));
    Ok((root, LogGuard { _queue: queue }))
}

fn std_level(level: Level) -> log::Level {
    match level {
        Level::Critical | Level::Error => log::Level::Error,
        Level::Warning => log::Level::Warn,
        Level::Info => log::Level::Info,
        Level::Debug => log::Level::Debug,
        Level::Trace => log::Level::Trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sink_off_is_an_error() {
        let off = LogSettings { terminal: false, dir: String::new(), ..LogSettings::default() };
        assert!(matches!(build(&off, Path::new(".")), Err(LogError::NoSink)));
    }
}
