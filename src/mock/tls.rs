//! HTTPS for the mock: a self-signed certificate made at start, so rehearsals can exercise pacer's
//! TLS client without a real CA.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The certificate and key the mock serves HTTPS with.
#[derive(Clone)]
pub struct MockTls {
    /// The certificate, PEM; a client trusts the mock by adding this as a root.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
    /// Where [`crate::mock::serve`] writes `cert_pem` before accepting, if anywhere.
    pub cert_out: Option<PathBuf>,
}

// === impl MockTls ===

impl MockTls {
    /// A fresh self-signed certificate for `localhost` and `127.0.0.1`.
    pub fn self_signed() -> anyhow::Result<MockTls> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let certified = rcgen::generate_simple_self_signed(names)
            .context("cannot generate the mock's self-signed certificate")?;
        Ok(MockTls {
            cert_pem: certified.cert.pem(),
            key_pem: certified.signing_key.serialize_pem(),
            cert_out: None,
        })
    }

    /// The certificate in DER, for a client's root store.
    pub fn cert_der(&self) -> anyhow::Result<CertificateDer<'static>> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .context("the mock's cert_pem holds no certificate")
    }

    /// A rustls acceptor speaking HTTP/1.1 only (the mock serves nothing else).
    pub(crate) fn acceptor(&self) -> anyhow::Result<TlsAcceptor> {
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .context("the mock's key_pem holds no private key")?;
        // An explicit provider, so the mock works whatever default another crate installed.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("rustls refused its default protocol versions")?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der()?], key)
            .context("rustls refused the mock's certificate")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Writes the certificate to `cert_out`, when set.
    pub(crate) fn publish(&self) -> anyhow::Result<()> {
        if let Some(path) = &self.cert_out {
            std::fs::write(path, &self.cert_pem).with_context(|| {
                format!("cannot write the mock's certificate to {}", path.display())
            })?;
            tracing::info!(path = %path.display(), "mock certificate written");
        }
        Ok(())
    }
}

impl fmt::Debug for MockTls {
    // The key stays out of logs and panics, even a mock's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockTls")
            .field("cert_out", &self.cert_out)
            .finish_non_exhaustive()
    }
}
