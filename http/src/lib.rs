//! ks-http: serves a warp filter on a bound listener, over plain TCP or over TLS, until a
//! shutdown future completes; connections in flight then finish.
//!
//! warp 0.4 serves TLS only through its own `tls` feature (rustls with aws-lc, and no way to
//! plug in another acceptor: its `Accept` trait is sealed), so with TLS this crate runs the
//! loop warp runs itself — accept, hand the connection to hyper-util's HTTP/1 builder, watch it
//! for graceful shutdown — with a rustls handshake in front. Without TLS it is warp's own
//! server. Both servers (ks-server, as-server) serve through [`serve`].
//!
//! Layout: [`Tls`] (certificate chain and key read from PEM files, [`Tls::from_pem_files`]),
//! [`serve`], [`Error`].
//!
//! ```no_run
//! # async fn run() -> Result<(), ks_http::Error> {
//! use warp::Filter;
//! let tls = ks_http::Tls::from_pem_files("cert.pem".as_ref(), "key.pem".as_ref())?;
//! let listener = ks_http::bind("127.0.0.1:0".parse().expect("an address")).await?;
//! let routes = warp::path!("health").map(|| "ok");
//! let task = ks_http::serve(routes, listener, Some(tls), std::future::pending());
//! # drop(task); Ok(()) }
//! ```

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use warp::{Filter, Reply};

/// What went wrong setting up the HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The certificate file could not be read or holds no PEM certificate.
    #[error("TLS certificate file {path}: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why it is unusable.
        reason: String,
    },
    /// The private-key file could not be read or holds no PEM private key.
    #[error("TLS private key file {path}: {reason}")]
    PrivateKey {
        /// The file.
        path: PathBuf,
        /// Why it is unusable.
        reason: String,
    },
    /// rustls refused the pair (e.g. the key does not belong to the certificate).
    #[error("TLS certificate {cert} with key {key}: {reason}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        reason: String,
    },
    /// The address could not be bound.
    #[error("cannot bind the HTTP API to {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS's reason.
        source: std::io::Error,
    },
}

/// A TLS server configuration: a certificate chain and its private key.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

/// The longest a client may take to finish its TLS handshake: one that stalls holds a task,
/// never the accept loop, but it should not hold it forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Tls {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or
    /// SEC1), and checks that they belong together.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Tls, Error> {
        let cert_error = |reason: String| Error::Certificate {
            path: cert.to_path_buf(),
            reason,
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| cert_error(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert_error(e.to_string()))?;
        if chain.is_empty() {
            return Err(cert_error("no PEM CERTIFICATE block in the file".into()));
        }
        let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| Error::PrivateKey {
            path: key.to_path_buf(),
            reason: e.to_string(),
        })?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private_key))
            .map_err(|e| Error::Pair {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                reason: e.to_string(),
            })?;
        let mut config = config;
        // HTTP/1.1 only, as without TLS: the servers' clients and peers speak nothing else.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
        })
    }
}

/// Binds `addr` (port 0 picks a free port). Bound here rather than by warp, which panics
/// when it cannot bind.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

/// Serves `filter` on `listener` (over TLS when `tls` is given) until `shutdown` completes;
/// connections in flight then finish before the returned task ends.
pub fn serve<F>(
    filter: F,
    listener: TcpListener,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()>
where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    match tls {
        None => tokio::spawn(
            warp::serve(filter)
                .incoming(listener)
                .graceful(shutdown)
                .run(),
        ),
        Some(tls) => tokio::spawn(serve_tls(filter, listener, tls, shutdown)),
    }
}

async fn serve_tls<F>(
    filter: F,
    listener: TcpListener,
    tls: Tls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let acceptor = TlsAcceptor::from(tls.config);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning, as warp does.
                    log::warn!("HTTP API: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let service = hyper_util::service::TowerToHyperService::new(warp::service(filter.clone()));
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    log::debug!("HTTP API: TLS handshake with {peer} failed: {e}");
                    return;
                }
                Err(_) => {
                    log::debug!("HTTP API: TLS handshake with {peer} timed out");
                    return;
                }
            };
            let io = hyper_util::rt::TokioIo::new(stream);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let builder = builder.http1_only();
            let connection = watcher.watch(builder.serve_connection(io, service).into_owned());
            if let Err(e) = connection.await {
                log::debug!("HTTP API: connection with {peer}: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn missing_and_empty_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let e = Tls::from_pem_files(&cert, &key).unwrap_err();
        assert!(matches!(e, Error::Certificate { .. }), "{e}");
        assert!(e.to_string().contains("cert.pem"), "{e}");
        std::fs::File::create(&cert)
            .unwrap()
            .write_all(b"not a pem")
            .unwrap();
        let e = Tls::from_pem_files(&cert, &key).unwrap_err();
        assert!(e.to_string().contains("no PEM CERTIFICATE"), "{e}");
    }
}
