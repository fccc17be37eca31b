//! Why a connection or request failed, in words a user can act on.
//!
//! hyper and hyper-util report the outer layer only (`client error (Connect)`, `tcp connect
//! error`); the useful part is at the bottom of the error's source chain (an `io::Error` of
//! kind `ConnectionRefused`, a rustls `UnknownIssuer`). [`explain`] walks the chain and says
//! the cause with the address it concerns: `connection refused to 127.0.0.1:9000`,
//! `certificate of api.test:443 not trusted: add tls.ca_file ...`.

use std::error::Error;
use std::fmt;
use std::io;

use crate::BoxError;

/// A connection attempt to `to` (`127.0.0.1:9000`, `the proxy 127.0.0.1:8080`) that failed.
#[derive(Debug)]
pub struct Failure {
    to: String,
    source: BoxError,
}

/// The proxy answered `CONNECT target` with something other than 2xx.
#[derive(Debug)]
pub struct TunnelRefused {
    target: String,
    status: Option<u16>,
    /// pacer's error code from the body, when the proxy is pacer.
    code: Option<String>,
}

// === impl Failure ===

impl Failure {
    pub fn boxed(to: String, source: impl Into<BoxError>) -> BoxError {
        Box::new(Failure {
            to,
            source: source.into(),
        })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot connect to {}", self.to)
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.source.as_ref())
    }
}

// === impl TunnelRefused ===

impl TunnelRefused {
    pub fn new(target: &str, status: Option<u16>, code: Option<String>) -> TunnelRefused {
        TunnelRefused {
            target: target.to_owned(),
            status,
            code,
        }
    }
}

impl fmt::Display for TunnelRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = &self.target;
        match (self.status, &self.code) {
            (None, _) => write!(
                f,
                "the proxy closed the CONNECT to {target} without an answer"
            ),
            (Some(s), None) => write!(f, "the proxy refused CONNECT {target} with {s}"),
            (Some(s), Some(code)) => {
                write!(f, "the proxy refused CONNECT {target} with {s} {code}")?;
                match code.as_str() {
                    "pacer.host.forbidden" => {
                        write!(f, " (no upstream in its config lists the host)")
                    }
                    "pacer.connect.intercept_unconfigured" => {
                        write!(f, " (its config has no intercept: section)")
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

impl Error for TunnelRefused {}

/// The cause of `err`, from the bottom of its source chain, with the address it concerns.
pub fn explain(err: &(dyn Error + 'static)) -> String {
    let mut to: Option<&str> = None;
    let mut deepest = err;
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(f) = e.downcast_ref::<Failure>() {
            to = Some(&f.to);
        }
        if let Some(refused) = e.downcast_ref::<TunnelRefused>() {
            return refused.to_string();
        }
        if let Some(tls) = tls_error(e) {
            return tls_words(tls, to.unwrap_or("the target"));
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if let Some(words) = io_words(io, to) {
                return words;
            }
        }
        deepest = e;
        next = below(e);
    }
    match to {
        Some(to) if deepest.downcast_ref::<Failure>().is_none() => format!("{to}: {deepest}"),
        _ => deepest.to_string(),
    }
}

/// The next error down the chain. An `io::Error` that wraps another (tokio-rustls wraps the
/// rustls error, hyper-rustls wraps that again) gives the wrapped one itself: its `source()`
/// would skip it and give the wrapped error's source.
fn below<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a (dyn Error + 'static)> {
    match e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
        Some(inner) => Some(inner),
        None => e.source(),
    }
}

fn tls_error<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    e.downcast_ref::<rustls::Error>()
}

fn tls_words(e: &rustls::Error, to: &str) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => format!(
            "certificate of {to} not trusted: add tls.ca_file to the scenario (or set \
             SSL_CERT_FILE) with the CA that signed it; through pacer's interception that is \
             pacer's CA (`pacer ca show`)"
        ),
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => {
            format!("certificate of {to} is not valid for that name")
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            format!("certificate of {to} has expired")
        }
        other => format!("TLS with {to} failed: {other}"),
    }
}

fn io_words(e: &io::Error, to: Option<&str>) -> Option<String> {
    let to = to.unwrap_or("the target");
    let words = match e.kind() {
        io::ErrorKind::ConnectionRefused => format!("connection refused to {to}"),
        io::ErrorKind::TimedOut => format!("connecting to {to} timed out"),
        io::ErrorKind::ConnectionReset => format!("connection reset by {to}"),
        io::ErrorKind::UnexpectedEof => format!("{to} closed the connection"),
        // DNS failures and the rest: the deepest error's own words, after the address.
        _ => return None,
    };
    Some(words)
}

/// `30s`, `1.5s`, `150ms`: as a scenario would write it.
pub fn duration_words(d: std::time::Duration) -> String {
    match d.subsec_millis() {
        0 => format!("{}s", d.as_secs()),
        _ if d.as_secs() == 0 => format!("{}ms", d.as_millis()),
        _ => format!("{}s", d.as_secs_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_written() {
        use std::time::Duration;
        assert_eq!(duration_words(Duration::from_secs(30)), "30s");
        assert_eq!(duration_words(Duration::from_millis(150)), "150ms");
        assert_eq!(duration_words(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn the_cause_at_the_bottom_of_the_chain_with_its_address() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let err = Failure::boxed("127.0.0.1:9000".into(), refused);
        assert_eq!(
            explain(err.as_ref()),
            "connection refused to 127.0.0.1:9000"
        );

        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let wrapped = io::Error::new(io::ErrorKind::InvalidData, unknown);
        let err = Failure::boxed("api.test:443".into(), wrapped);
        let words = explain(err.as_ref());
        assert!(
            words.starts_with("certificate of api.test:443 not trusted: add tls.ca_file"),
            "{words}"
        );

        let refusal = TunnelRefused::new(
            "api.test:443",
            Some(403),
            Some("pacer.host.forbidden".into()),
        );
        let err = Failure::boxed("api.test:443".into(), refusal);
        let words = explain(err.as_ref());
        assert!(
            words.starts_with(
                "the proxy refused CONNECT api.test:443 with 403 pacer.host.forbidden"
            ),
            "{words}"
        );
    }
}
