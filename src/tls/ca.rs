//! The interception CA: two PEM files, loaded when both exist and created when neither does.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::TlsError;
use crate::config::Intercept;

/// How long a newly created CA is valid. Long, because every load-generator machine has to be
/// told to trust it, and renewing means doing that again.
const CA_VALIDITY_DAYS: i64 = 3650;

/// The CA pacer uses when the config has no `intercept:` section: `ca.pem` and `ca-key.pem` in
/// its state directory, the first of `$PACER_STATE_DIR`, `$XDG_DATA_HOME/pacer` and
/// `$HOME/.local/share/pacer` (where mitmproxy and other tools keep theirs, so one CA outlives
/// restarts and the load tool trusts it once). None when none of those is set.
pub fn default_files() -> Option<Intercept> {
    default_files_in(|name| std::env::var_os(name).filter(|v| !v.is_empty()))
}

/// [`default_files`] with the environment looked up through `var`, for tests.
pub fn default_files_in(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<Intercept> {
    let dir = match (var("PACER_STATE_DIR"), var("XDG_DATA_HOME"), var("HOME")) {
        (Some(dir), _, _) => PathBuf::from(dir),
        (None, Some(data), _) => Path::new(&data).join("pacer"),
        (None, None, Some(home)) => Path::new(&home).join(".local/share/pacer"),
        (None, None, None) => return None,
    };
    Some(Intercept {
        ca_cert: dir.join("ca.pem"),
        ca_key: dir.join("ca-key.pem"),
    })
}

/// Whether [`Ca::load_or_create`] found the CA or made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Loaded,
    Created,
}

/// A loaded CA, able to sign leaf certificates.
pub struct Ca {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

// === impl Ca ===

impl Ca {
    /// Loads the CA named by `files`, creating both files first if neither exists.
    pub fn load_or_create(files: &Intercept) -> Result<(Ca, Origin), TlsError> {
        match (files.ca_cert.exists(), files.ca_key.exists()) {
            (true, true) => Ok((Ca::load(files)?, Origin::Loaded)),
            (false, false) => Ok((Ca::create(files)?, Origin::Created)),
            (true, false) => Err(TlsError::HalfPair {
                present: files.ca_cert.clone(),
                missing: files.ca_key.clone(),
            }),
            (false, true) => Err(TlsError::HalfPair {
                present: files.ca_key.clone(),
                missing: files.ca_cert.clone(),
            }),
        }
    }

    /// Loads an existing CA, and checks that the key belongs to the certificate: a mismatch
    /// would otherwise show up only as every client refusing every leaf.
    pub fn load(files: &Intercept) -> Result<Ca, TlsError> {
        let cert_pem = read(&files.ca_cert)?;
        let key_pem = read(&files.ca_key)?;
        let invalid = |path: &Path, what, reason: String| TlsError::Invalid {
            path: path.to_owned(),
            what,
            reason,
        };
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| invalid(&files.ca_cert, "PEM certificate", e.to_string()))?;
        let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| invalid(&files.ca_key, "PEM private key", e.to_string()))?;
        let provider = rustls::crypto::ring::default_provider();
        CertifiedKey::from_der(vec![cert_der], key_der, &provider)
            .map_err(|e| invalid(&files.ca_key, "key for the CA certificate", e.to_string()))?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| invalid(&files.ca_key, "PEM private key", e.to_string()))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .map_err(|e| invalid(&files.ca_cert, "CA certificate", e.to_string()))?;
        Ok(Ca { cert_pem, issuer })
    }

    /// Makes a new CA and writes it: the key first, readable by the owner only, so that a
    /// certificate on disk always has its key beside it.
    fn create(files: &Intercept) -> Result<Ca, TlsError> {
        let key = KeyPair::generate().map_err(|e| TlsError::Create(e.to_string()))?;
        let cert = ca_params()
            .self_signed(&key)
            .map_err(|e| TlsError::Create(e.to_string()))?;
        let cert_pem = cert.pem();
        write(&files.ca_key, key.serialize_pem().as_bytes(), 0o600)?;
        write(&files.ca_cert, cert_pem.as_bytes(), 0o644)?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .map_err(|e| TlsError::Create(e.to_string()))?;
        Ok(Ca { cert_pem, issuer })
    }

    /// The CA certificate, PEM: what clients add to their trust store.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub(super) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }
}

impl fmt::Debug for Ca {
    // The issuer holds the private key; keep it out of any `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

/// A CA that may sign leaves but no further CAs (path length 0), named so that whoever finds it
/// in a trust store knows where it came from.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "pacer");
    dn.push(
        DnType::CommonName,
        format!("pacer interception CA {}", host_tag()),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(CA_VALIDITY_DAYS);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&rand::random::<[u8; 16]>()));
    params
}

/// A short random tag, so two machines' CAs are told apart in a trust store listing.
fn host_tag() -> String {
    let tag: [u8; 4] = rand::random();
    tag.iter().map(|b| format!("{b:02x}")).collect()
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Creates `path` (never overwriting) with `mode` on Unix, and its directory if missing.
fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let err = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    // A directory pacer makes for a CA key is its owner's alone.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(err)?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Intercept {
        Intercept {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
        }
    }

    fn temp_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pacer-ca-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn creates_then_loads_the_same_ca_with_a_private_key_file() {
        let dir = temp_dir();
        let (first, origin) = Ca::load_or_create(&files(&dir)).unwrap();
        assert_eq!(origin, Origin::Created);
        let (second, origin) = Ca::load_or_create(&files(&dir)).unwrap();
        assert_eq!(origin, Origin::Loaded);
        assert_eq!(first.cert_pem(), second.cert_pem());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("ca-key.pem"))
                .unwrap()
                .permissions();
            assert_eq!(mode.mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_default_ca_lives_in_the_state_directory() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                let found = vars.iter().find(|(k, _)| *k == name);
                found.map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let cert = |vars| default_files_in(env(vars)).map(|f| f.ca_cert);
        let all = &[
            ("PACER_STATE_DIR", "/s"),
            ("XDG_DATA_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(cert(all), Some("/s/ca.pem".into()));
        assert_eq!(cert(&all[1..]), Some("/x/pacer/ca.pem".into()));
        assert_eq!(cert(&all[2..]), Some("/h/.local/share/pacer/ca.pem".into()));
        assert_eq!(cert(&[]), None);
        let key = default_files_in(env(&all[2..])).unwrap().ca_key;
        assert_eq!(key, PathBuf::from("/h/.local/share/pacer/ca-key.pem"));
    }

    #[test]
    fn refuses_half_a_pair_and_a_mismatched_key() {
        let (a, b) = (temp_dir(), temp_dir());
        Ca::load_or_create(&files(&a)).unwrap();
        Ca::load_or_create(&files(&b)).unwrap();
        std::fs::copy(b.join("ca-key.pem"), a.join("ca-key.pem")).unwrap();
        let err = Ca::load(&files(&a)).unwrap_err();
        assert!(err.to_string().contains("key for the CA"), "{err}");
        std::fs::remove_file(a.join("ca-key.pem")).unwrap();
        let err = Ca::load_or_create(&files(&a)).unwrap_err();
        assert!(matches!(err, TlsError::HalfPair { .. }), "{err}");
        std::fs::remove_dir_all(a).unwrap();
        std::fs::remove_dir_all(b).unwrap();
    }
}
