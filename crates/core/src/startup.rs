//! Building and running the server: stores → DaoGroup → ServiceGroup → AppState →
//! RouterGroup → HttpServer. Tests use the same code with port 0.

use std::time::Duration;

use actix_web::{
    App, HttpServer,
    dev::{Server, ServerHandle},
    middleware::from_fn,
    web,
};
use chat_api::{ApiGroup, AppState};
use chat_dao::{DaoError, DaoGroup, Stores};
use chat_model::Settings;
use chat_routers::RouterGroup;
use chat_service::ServiceGroup;
use prometheus_client::registry::Registry;
use slog::{Logger, info, warn};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("stores: {0}")]
    Stores(#[from] DaoError),
    #[error("binding {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
}

/// A built server, bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    stores: Stores,
    log: Logger,
}

impl Application {
    /// Connects the stores (creating the database, migrating, indexing), builds the groups
    /// and binds the listener. `settings.server.port` 0 picks a free port: see [`Self::port`].
    pub async fn build(settings: Settings, log: Logger) -> Result<Application, StartError> {
        let stores = Stores::connect(&settings).await?;
        let daos = DaoGroup::new(&stores, &settings);
        let services = ServiceGroup::new(&daos, &settings, &log);
        let mut registry = Registry::default();
        stores.metrics.register(&mut registry);
        services.metrics.register(&mut registry);
        let state = AppState::new(services, settings.clone(), registry, log.clone());
        let data = web::Data::new(state.clone());
        let routers = RouterGroup::new(ApiGroup::default());

        let addr = format!("{}:{}", settings.server.host, settings.server.port);
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .wrap(from_fn(chat_api::middleware::request_context))
                .configure(|cfg| routers.configure(cfg))
        })
        .disable_signals()
        // small frames must leave at once: Nagle's algorithm with delayed ACKs held them ~40 ms
        .tcp_nodelay(true)
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        .max_connections(1_000_000)
        .backlog(4096);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.bind(&addr).map_err(|source| StartError::Bind { addr: addr.clone(), source })?;
        let port = server.addrs().first().map(|a| a.port()).unwrap_or(settings.server.port);
        info!(log, "listening"; "addr" => format!("{}:{port}", settings.server.host));
        Ok(Application { port, server: server.run(), state, stores, log })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle that stops the server gracefully (see [`Stopper::stop`]).
    pub fn handle(&self) -> Stopper {
        Stopper {
            server: self.server.handle(),
            services: self.state.services.clone(),
            timeout: Duration::from_secs(self.state.settings.server.shutdown_timeout_secs.max(1)),
            log: self.log.clone(),
        }
    }

    /// Runs until stopped; then closes the store pools.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.stores.close();
        info!(self.log, "stopped");
        result
    }
}

/// Stops a running server gracefully, draining the send path before the pools close.
#[derive(Clone)]
pub struct Stopper {
    server: ServerHandle,
    services: ServiceGroup,
    timeout: Duration,
    log: Logger,
}

impl Stopper {
    /// 1. New sends and connections are refused (`/readyz` says 503, `/ws` answers 503) and
    ///    every WebSocket is told to close: each stops reading, writes the replies to the sends
    ///    it has in flight and closes with 1001;
    /// 2. once they are gone (or `shutdown_timeout_secs` passed), the committers store and
    ///    answer whatever is still queued, and the read marks of what was written are saved;
    /// 3. the HTTP server stops (requests in flight get `shutdown_timeout_secs`), and then
    ///    [`Application::run_until_stopped`] closes the pools.
    pub async fn stop(&self) {
        let closing = self.services.chat.begin_shutdown();
        info!(self.log, "draining connections"; "count" => closing);
        if !self.services.chat.hub().wait_empty(self.timeout).await {
            warn!(self.log, "connections still open after the shutdown timeout"; "count" => self.services.chat.hub().len());
        }
        if tokio::time::timeout(self.timeout, self.services.stop_workers()).await.is_err() {
            warn!(self.log, "workers still busy after the shutdown timeout (a store that does not answer)");
        }
        self.server.stop(true).await;
    }
}

/// Waits for SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
