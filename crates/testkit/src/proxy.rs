//! A TCP proxy in front of a real store that a test can break: pass everything, swallow the
//! store's replies (requests still arrive and are carried out, so the client cannot know what
//! happened), or cut every connection and refuse new ones.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    task::AbortHandle,
};

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Pass = 0,
    /// Requests go through; replies are dropped.
    SwallowReplies = 1,
    /// Every connection is closed, and new ones are closed at once.
    Refuse = 2,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    pumps: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mode = Arc::new(AtomicU8::new(Mode::Pass as u8));
        let pumps: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (m, p) = (mode.clone(), pumps.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if m.load(Ordering::SeqCst) == Mode::Refuse as u8 {
                    drop(client);
                    continue;
                }
                let mode = m.clone();
                let pump = tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        pump(client, server, mode).await;
                    }
                });
                let mut pumps = p.lock().unwrap_or_else(|e| e.into_inner());
                pumps.retain(|h| !h.is_finished());
                pumps.push(pump.abort_handle());
            }
        })
        .abort_handle();
        Ok(FaultProxy { addr, mode, pumps, accept })
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        if mode == Mode::Refuse {
            for p in self.pumps.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                p.abort();
            }
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.set(Mode::Refuse);
    }
}

async fn pump(client: TcpStream, server: TcpStream, mode: Arc<AtomicU8>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if mode.load(Ordering::SeqCst) == Mode::SwallowReplies as u8 {
                        continue;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
