//! The daemon's one listener: `/healthz` and `/metrics` (`health.rs`), the
//! JSON API under `/api/v1/` (`api.rs`, writes behind `auth.rs`) and the
//! status page (`page/`). Plain HTTP, or HTTPS with `[server] tls_cert` and
//! `tls_key`. The listener is bounded: at most [`MAX_CONNECTIONS`] at once,
//! TLS handshake and request headers within [`HEADER_TIMEOUT`], no
//! connection past [`CONNECTION_LIFETIME`], request bodies within
//! [`MAX_BODY`].

mod api;
mod auth;
pub mod health;
mod page;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::runtime::Runtime;
use crate::actions::Actor;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::poll::Health;
use crate::store::Store;

/// Connections served at once; more are closed as they arrive, so a flood
/// of idle connections cannot take the file descriptors polls need.
pub const MAX_CONNECTIONS: usize = 64;
/// A client must finish the TLS handshake and send its request headers
/// within this (idle keep-alive included).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer than this.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// The largest request body read (a silence is a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;

/// A config reload asked for through the API, answered by the main loop.
pub struct ReloadRequest {
    pub actor: Actor,
    pub done: oneshot::Sender<Result<(), String>>,
}

/// What every handler reads.
#[derive(Clone)]
pub struct ServerState {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub store: Store,
    /// This instance's place in the leader lease (PostgreSQL only).
    pub fence: Option<Arc<crate::store::lease::Fence>>,
    /// The running config (tokens, silences, locale), swapped on reload.
    pub(super) runtime: watch::Receiver<Arc<Runtime>>,
    /// Where `POST /api/v1/reload` asks the main loop to reload.
    pub reloads: mpsc::Sender<ReloadRequest>,
}

impl ServerState {
    fn config(&self) -> Arc<Config> {
        self.runtime.borrow().config.clone()
    }
}

/// The client's address, for the audit log.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

fn router(state: ServerState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .merge(api::routes())
        .merge(page::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Reads the certificate chain and key for HTTPS.
fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the certificate {}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("no certificate in {}", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not go together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Binds `listen` and serves until cancelled, within the limits above.
pub async fn serve(
    listen: SocketAddr,
    tls: Option<(&Path, &Path)>,
    state: ServerState,
    cancel: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let acceptor = tls.map(|(cert, key)| tls_acceptor(cert, key)).transpose()?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = router(state);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, most likely: wait rather than spin.
                    tracing::warn!(%error, "the HTTP server cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let app = app.clone().layer(axum::Extension(Peer(peer)));
            let cancel = cancel.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let serving = async move {
                    match acceptor {
                        None => serve_connection(stream, app).await,
                        Some(acceptor) => {
                            match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream))
                                .await
                            {
                                Ok(Ok(tls)) => serve_connection(tls, app).await,
                                Ok(Err(error)) => {
                                    tracing::debug!(%error, %peer, "TLS handshake failed")
                                }
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            }
                        }
                    }
                };
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = tokio::time::timeout(CONNECTION_LIFETIME, serving) => {}
                }
            });
        }
    });
    Ok(addr)
}

async fn serve_connection<S>(stream: S, app: Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
        .await;
}
