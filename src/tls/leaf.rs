//! Leaf certificates for intercepted names, and the bounded cache of server configs that use them.
//!
//! All leaves share one key pair, made at start: a leaf then costs one signature, and a cached
//! name costs nothing but the handshake. The cache holds one rustls `ServerConfig` per name
//! (each with a resolver that always answers that name's certificate), so TLS session
//! resumption works per name. It is bounded: names come from the client's SNI, which pacer
//! does not control, and memory must stay bounded by configuration.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::ServerConfig;
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use tokio::time::Instant;

use super::{Ca, TlsError};

/// Names cached at most. Far above the handful of API hosts a test uses; the bound only stops
/// a client that invents SNI names from growing the cache without end.
pub const DEFAULT_CAPACITY: usize = 1024;
/// How long a leaf is valid; short, because pacer makes a new one whenever it needs to.
const LEAF_VALIDITY_DAYS: i64 = 30;
/// A cached leaf is replaced after this long, well before it expires, so a long-running pacer
/// never hands out an expired certificate.
const LEAF_RENEW_AFTER: Duration = Duration::from_secs(20 * 24 * 3600);

/// Issues leaf certificates signed by the CA and caches a server config per name.
pub struct Leaves {
    ca: Ca,
    key: KeyPair,
    signing: Arc<dyn SigningKey>,
    provider: Arc<CryptoProvider>,
    cache: Mutex<HashMap<String, Entry>>,
    capacity: usize,
}

struct Entry {
    config: Arc<ServerConfig>,
    issued: Instant,
}

// === impl Leaves ===

impl Leaves {
    pub fn new(ca: Ca) -> Result<Leaves, TlsError> {
        Leaves::with_capacity(ca, DEFAULT_CAPACITY)
    }

    pub fn with_capacity(ca: Ca, capacity: usize) -> Result<Leaves, TlsError> {
        let issue_err = |reason: String| TlsError::Issue {
            name: "(leaf key)".into(),
            reason,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = KeyPair::generate().map_err(|e| issue_err(e.to_string()))?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = provider
            .key_provider
            .load_private_key(der)
            .map_err(|e| issue_err(e.to_string()))?;
        Ok(Leaves {
            ca,
            key,
            signing,
            provider,
            cache: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        })
    }

    /// The server config presenting a certificate for `name` (a DNS name or an IP address),
    /// from the cache or freshly issued.
    pub fn server_config(&self, name: &str) -> Result<Arc<ServerConfig>, TlsError> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        // Only a valid DNS name or IP address goes into a certificate; the CONNECT host and
        // the SNI name are already checked, but this is the last line before the CA signs.
        if rustls::pki_types::ServerName::try_from(name.as_str()).is_err() {
            return Err(TlsError::Issue {
                name,
                reason: "not a DNS name or IP address".into(),
            });
        }
        if let Some(config) = self.cached(&name) {
            return Ok(config);
        }
        // Issued outside the lock: two connections racing for a new name both sign, and the
        // second insert wins; cheaper than making every other name wait for a signature.
        let config = self.issue(&name)?;
        self.insert(name, config.clone());
        Ok(config)
    }

    /// How many names are cached.
    pub fn len(&self) -> usize {
        self.cache.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn cached(&self, name: &str) -> Option<Arc<ServerConfig>> {
        let cache = self.cache.lock();
        let entry = cache.get(name)?;
        (entry.issued.elapsed() < LEAF_RENEW_AFTER).then(|| entry.config.clone())
    }

    fn insert(&self, name: String, config: Arc<ServerConfig>) {
        let mut cache = self.cache.lock();
        if cache.len() >= self.capacity && !cache.contains_key(&name) {
            // Evict the oldest; a linear scan, but only when a new name arrives at a full cache.
            let oldest = cache
                .iter()
                .min_by_key(|(_, e)| e.issued)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                cache.remove(&oldest);
            }
        }
        let issued = Instant::now();
        cache.insert(name, Entry { config, issued });
    }

    fn issue(&self, name: &str) -> Result<Arc<ServerConfig>, TlsError> {
        let err = |reason: String| TlsError::Issue {
            name: name.to_owned(),
            reason,
        };
        let cert = leaf_params(name)
            .map_err(|e| err(e.to_string()))?
            .signed_by(&self.key, self.ca.issuer())
            .map_err(|e| err(e.to_string()))?;
        let certified = CertifiedKey::new(vec![cert.der().clone()], self.signing.clone());
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| err(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
        // pacer serves HTTP/1.1 inside the tunnel; a client offering h2 and http/1.1 picks 1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        tracing::debug!(name, "issued an interception certificate");
        Ok(Arc::new(config))
    }
}

/// A server certificate for `name`, valid from a day ago (clients with a slow clock) for
/// [`LEAF_VALIDITY_DAYS`].
fn leaf_params(name: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(vec![name.to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(LEAF_VALIDITY_DAYS);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&rand::random::<[u8; 16]>()));
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Intercept;

    fn leaves(capacity: usize) -> (Leaves, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("pacer-leaf-{}", uuid::Uuid::new_v4()));
        let files = Intercept {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
        };
        let (ca, _) = Ca::load_or_create(&files).unwrap();
        (Leaves::with_capacity(ca, capacity).unwrap(), dir)
    }

    #[test]
    fn caches_per_name_case_insensitively_and_stays_bounded() {
        let (leaves, dir) = leaves(2);
        let a = leaves.server_config("api.test").unwrap();
        let again = leaves.server_config("API.test.").unwrap();
        assert!(Arc::ptr_eq(&a, &again), "the cached config is reused");
        leaves.server_config("127.0.0.1").unwrap();
        leaves.server_config("other.test").unwrap();
        assert_eq!(leaves.len(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_names_that_are_not_names() {
        let (leaves, dir) = leaves(4);
        assert!(leaves.server_config("bad name with spaces").is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
