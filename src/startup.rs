//! What can stop a program from starting, and the listener helper every program uses.

use crate::config::ConfigError;
use crate::store::StoreError;

/// A reason a program could not start. Displays as one line.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A configuration key is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be set up.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The trace exporter could not be built.
    #[error(transparent)]
    Traces(#[from] crate::telemetry::TracesError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Anything else that went wrong while starting (I/O, key material, HTTP client).
    #[error("{0}")]
    Other(String),
}

/// Binds `addr` with the options every listener wants.
pub fn bind(addr: std::net::SocketAddr) -> Result<std::net::TcpListener, StartupError> {
    std::net::TcpListener::bind(addr).map_err(|source| StartupError::Bind { addr, source })
}
