//! The root logger: human-readable lines on the terminal and JSON lines in `<dir>/<file>`,
//! duplicated, filtered by level, written by a background thread (slog-async). Keep the
//! returned guard alive: dropping it flushes the queue.

use std::{fs::OpenOptions, path::Path, sync::Mutex};

use chat_model::config::LogSettings;
use slog::{Drain, Level, Logger, o};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log level {0:?} is not one of trace, debug, info, warning, error, critical")]
    Level(String),
    #[error("log file {0}: {1}")]
    File(String, std::io::Error),
}

pub struct LogGuard(#[allow(dead_code)] Option<slog_async::AsyncGuard>);

pub fn build(settings: &LogSettings, base: &Path) -> Result<(Logger, LogGuard), LogError> {
    let level: Level = match settings.level.as_str() {
        "warn" => Level::Warning,
        other => other.parse().map_err(|_| LogError::Level(settings.level.clone()))?,
    };
    let terminal = settings.terminal.then(|| {
        let decorator = slog_term::TermDecorator::new().stderr().build();
        slog_term::FullFormat::new(decorator).build().fuse()
    });
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
        Some(Mutex::new(slog_json::Json::default(f)).fuse())
    };
    let root = o!("app" => "chat", "version" => env!("CARGO_PKG_VERSION"));
    let (drain, guard) = match (terminal, file) {
        (None, None) => return Ok((Logger::root(slog::Discard, root), LogGuard(None))),
        (Some(t), None) => slog_async::Async::new(t).chan_size(4096).build_with_guard(),
        (None, Some(f)) => slog_async::Async::new(f).chan_size(4096).build_with_guard(),
        (Some(t), Some(f)) => {
            slog_async::Async::new(slog::Duplicate::new(t, f).fuse()).chan_size(4096).build_with_guard()
        }
    };
    Ok((Logger::root(drain.filter_level(level).fuse(), root), LogGuard(Some(guard))))
}
