//! Serving HTTP with the limits a public server needs, which `axum::serve` leaves out:
//!
//! - a deadline for a request's headers ([`ServeLimits::header_read_timeout`]), from the
//!   moment the connection is accepted, so a client sending nothing, or its headers a byte
//!   at a time, cannot hold a connection (and a file) forever;
//! - a cap on open connections ([`ServeLimits::max_connections`]): past it, new ones wait in
//!   the kernel's accept queue instead of exhausting the process's files;
//! - a bounded graceful shutdown: on the signal the server stops accepting, lets requests
//!   in flight finish for up to the grace period, then closes what is still open (a client
//!   following the log, an idle keep-alive connection).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// Limits on the connections the app serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Longest time a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits { header_read_timeout: Duration::from_secs(10), max_connections: 1_000 }
    }
}

/// How long to wait before accepting again after the accept itself failed (e.g. the
/// process is out of files).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` resolves, then drains as described in
/// the module documentation, waiting at most `grace` for open connections.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
    limits: ServeLimits,
    grace: Duration,
) {
    // HTTP/1 only: detecting HTTP/2 (cleartext, prior knowledge) first waits for the
    // connection's first bytes with no deadline, so a silent connection would hold its
    // place forever. HTTP/2 belongs behind a TLS-terminating proxy, which speaks HTTP/1 here.
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    warn!(%err, "accepting a connection failed; trying again shortly");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(err) = connection.await {
                debug!(%peer, %err, "connection ended with an error");
            }
            drop(permit);
        });
        // Reap finished connections so the set holds open ones only.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let open = connections.len();
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        info!(open, ?grace, "closing the connections still open after the shutdown grace period");
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}
