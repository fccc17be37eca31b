//! pacer's own certificate authority, for TLS interception of CONNECT.
//!
//! A load tool that uses pacer as its HTTP proxy sends HTTPS as `CONNECT host:443` followed by a
//! TLS handshake. To shape those requests by method and path, pacer terminates the TLS itself,
//! with a certificate for the requested name signed by a CA the load tool has been told to trust.
//!
//! - [`ca`]: loads the CA from `intercept.ca_cert` / `intercept.ca_key`, or creates it (the key
//!   file with mode 0600). The key never reaches a log line or an error message.
//! - [`leaf`]: issues leaf certificates for names, and caches one rustls `ServerConfig` per name
//!   (bounded), so a new connection to a known name costs a handshake and no signing.

pub mod ca;
pub mod leaf;

use std::path::PathBuf;

pub use self::ca::{Ca, Origin};
pub use self::leaf::Leaves;

/// Why the CA could not be loaded or created, or a leaf not issued.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The file exists but is not what it should be. `reason` never quotes the file's content.
    #[error("{} is not a usable {what}: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },

    /// Only one of the pair exists. Creating the other would make a CA whose key does not match
    /// the certificate clients already trust, so pacer refuses instead of guessing.
    #[error(
        "{} exists but {} does not; restore it, or remove both to have pacer create a new CA",
        present.display(),
        missing.display()
    )]
    HalfPair { present: PathBuf, missing: PathBuf },

    #[error("cannot create the CA: {0}")]
    Create(String),

    #[error("cannot issue a certificate for {name:?}: {reason}")]
    Issue { name: String, reason: String },
}
