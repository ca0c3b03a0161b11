//! The processes the drill runs and breaks: its own Redis, its own SecantusDB, the chat server;
//! and the TCP proxy it puts in front of MySQL.

use std::{
    fs::File,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};

pub type DrillResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A port free on 127.0.0.1 now.
pub fn free_port() -> DrillResult<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process that can be signalled, killed and started again with the same command.
pub struct Proc {
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    pub fn new(
        name: impl Into<String>,
        program: impl Into<PathBuf>,
        args: Vec<String>,
        env: Vec<(String, String)>,
        cwd: &Path,
    ) -> Proc {
        let name = name.into();
        let log = cwd.join(format!("{name}.log"));
        Proc { name, program: program.into(), args, env, cwd: cwd.to_path_buf(), log, child: None }
    }

    pub fn start(&mut self) -> DrillResult<()> {
        let log = File::options().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {} ({}): {e}", self.name, self.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> Option<Pid> {
        self.child.as_ref().map(|c| Pid::from_raw(c.id() as i32))
    }

    pub fn signal(&self, sig: Signal) -> DrillResult<()> {
        let pid = self.pid().ok_or_else(|| format!("{} is not running", self.name))?;
        nix::sys::signal::kill(pid, sig)?;
        Ok(())
    }

    /// Sends `sig` and waits (up to `within`) for the process to exit; kills it after that.
    /// How long it took to exit.
    pub fn stop_with(&mut self, sig: Signal, within: Duration) -> DrillResult<Duration> {
        let started = Instant::now();
        let Some(mut child) = self.child.take() else { return Ok(Duration::ZERO) };
        let _ = nix::sys::signal::kill(Pid::from_raw(child.id() as i32), sig);
        while started.elapsed() < within {
            if child.try_wait()?.is_some() {
                return Ok(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("{} did not exit within {within:?} of {sig}", self.name).into())
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub async fn wait_port(port: u16, within: Duration) -> DrillResult<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("nothing answered on port {port} within {within:?}").into())
}

/// Finds a program on PATH (or in ~/.cargo/bin).
pub fn which(program: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(program)).find(|p| p.is_file())
}
