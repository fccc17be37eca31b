//! One OAuth token for the whole run (client-credentials grant), shared by every request and
//! refreshed before it expires.
//!
//! A single background task owns fetching: it gets the first token before any load starts and
//! the next one shortly before the current one expires, and publishes each through a watch
//! channel that requests read. So a refresh happens exactly once however many users are
//! running (no stampede of concurrent refreshes), and no request ever waits for one. The
//! secret and tokens are never logged: header values are marked sensitive, and errors quote
//! only the status and the server's own error text.

use std::future::Future;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request};
use http_body_util::Full;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::client::HttpClient;
use super::scenario::Auth;

/// A token no longer than this before expiry is renewed; shorter lifetimes renew after 90%.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Between failed refresh attempts (the current token stays in use meanwhile).
const RETRY_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the token request to {url} failed: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the token endpoint {url} answered {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the token endpoint {url} answered without access_token and expires_in")]
    Malformed { url: String },
}

/// A bearer token and how long it lives.
pub struct Token {
    /// `Bearer <token>`, marked sensitive.
    pub header: HeaderValue,
    pub lifetime: Duration,
}

/// The current token, kept fresh by a background task that ends when this is dropped.
pub struct Tokens {
    current: watch::Receiver<HeaderValue>,
    refresher: JoinHandle<()>,
}

// === impl Tokens ===

impl Tokens {
    /// Fetches the first token with `client`, then keeps it fresh.
    pub async fn start(auth: &Auth, client: &HttpClient) -> Result<Tokens, AuthError> {
        let (auth, client) = (auth.clone(), client.clone());
        Tokens::start_with(move || {
            let (auth, client) = (auth.clone(), client.clone());
            async move { fetch(&auth, &client).await }
        })
        .await
    }

    /// Like [`Tokens::start`], with any way of fetching a token (tests use a counter).
    pub async fn start_with<F, Fut>(fetch: F) -> Result<Tokens, AuthError>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Token, AuthError>> + Send + 'static,
    {
        let first = fetch().await?;
        let (tx, current) = watch::channel(first.header);
        let refresher = tokio::spawn(refresh(fetch, tx, Instant::now(), first.lifetime));
        Ok(Tokens { current, refresher })
    }

    /// The `Authorization` value to send now.
    pub fn header(&self) -> HeaderValue {
        self.current.borrow().clone()
    }
}

impl Drop for Tokens {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

/// When a token fetched at `at` and living `lifetime` is renewed.
fn renew_at(at: Instant, lifetime: Duration) -> Instant {
    at + lifetime - REFRESH_MARGIN.min(lifetime / 10)
}

/// The refresher: sleeps until the renewal time, fetches, publishes; retries on failure until
/// the token expires (then keeps trying: requests meanwhile get the API's 401s, which the
/// report shows).
async fn refresh<F, Fut>(fetch: F, tx: watch::Sender<HeaderValue>, at: Instant, lifetime: Duration)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Token, AuthError>>,
{
    let mut due = renew_at(at, lifetime);
    loop {
        tokio::time::sleep_until(due).await;
        match fetch().await {
            Ok(token) => {
                let now = Instant::now();
                due = renew_at(now, token.lifetime);
                if tx.send(token.header).is_err() {
                    return;
                }
                tracing::debug!("OAuth token renewed");
            }
            Err(e) => {
                tracing::warn!(error = %e, "OAuth token renewal failed; retrying");
                due = Instant::now() + RETRY_EVERY;
            }
        }
    }
}

/// One client-credentials grant: `POST token_url` with Basic auth and
/// `grant_type=client_credentials`.
pub async fn fetch(auth: &Auth, client: &HttpClient) -> Result<Token, AuthError> {
    let url = auth.token_url.as_str().to_owned();
    let credentials = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", auth.client_id, auth.client_secret));
    let mut basic = HeaderValue::from_str(&format!("Basic {credentials}"))
        .expect("base64 is a valid header value");
    basic.set_sensitive(true);
    let req = Request::builder()
        .method(Method::POST)
        .uri(url.as_str())
        .header(AUTHORIZATION, basic)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(
            b"grant_type=client_credentials",
        )))
        .map_err(|e| AuthError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let (status, body) = client
        .fetch(req)
        .await
        .map_err(|e| AuthError::Unreachable {
            url: url.clone(),
            reason: super::cause::explain(e.as_ref()),
        })?;
    if !status.is_success() {
        let body = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        return Err(AuthError::Refused {
            url,
            status: status.as_u16(),
            body,
        });
    }
    parse_token(&body).ok_or(AuthError::Malformed { url })
}

fn parse_token(body: &[u8]) -> Option<Token> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = json.get("access_token")?.as_str()?;
    let lifetime = json.get("expires_in")?.as_u64()?;
    let mut header = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    header.set_sensitive(true);
    Some(Token {
        header,
        // A token that claims to live under a second would be renewed in a busy loop.
        lifetime: Duration::from_secs(lifetime.max(1)),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;

    #[test]
    fn renewal_time() {
        let now = Instant::now();
        let day = Duration::from_secs(86_400);
        assert_eq!(renew_at(now, day), now + day - REFRESH_MARGIN);
        let short = Duration::from_secs(100);
        assert_eq!(renew_at(now, short), now + Duration::from_secs(90));
    }

    #[test]
    fn token_bodies() {
        let t = parse_token(br#"{"access_token":"abc","token_type":"bearer","expires_in":86400}"#)
            .unwrap();
        assert_eq!(t.header, "Bearer abc");
        assert!(t.header.is_sensitive());
        assert_eq!(t.lifetime, Duration::from_secs(86_400));
        assert!(parse_token(br#"{"access_token":"abc"}"#).is_none());
        assert!(parse_token(b"nope").is_none());
    }

    /// Readers never fetch; the one refresher renews once per lifetime, before expiry.
    #[tokio::test(start_paused = true)]
    async fn one_fetch_per_lifetime_whatever_the_readers() {
        let fetches = Arc::new(AtomicU32::new(0));
        let counter = fetches.clone();
        let tokens = Tokens::start_with(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                Ok(Token {
                    header: HeaderValue::from_str(&format!("Bearer t{n}")).unwrap(),
                    lifetime: Duration::from_secs(100),
                })
            }
        })
        .await
        .unwrap();
        for _ in 0..1000 {
            assert_eq!(tokens.header(), "Bearer t1");
        }
        tokio::time::sleep(Duration::from_secs(89)).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(tokens.header(), "Bearer t1");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        assert_eq!(
            tokens.header(),
            "Bearer t2",
            "renewed before the 100 s expiry"
        );
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_renewal_keeps_the_token_and_retries() {
        let fetches = Arc::new(AtomicU32::new(0));
        let counter = fetches.clone();
        let tokens = Tokens::start_with(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                match n {
                    2 => Err(AuthError::Malformed { url: "x".into() }),
                    _ => Ok(Token {
                        header: HeaderValue::from_str(&format!("Bearer t{n}")).unwrap(),
                        lifetime: Duration::from_secs(100),
                    }),
                }
            }
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_secs(91)).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        assert_eq!(tokens.header(), "Bearer t1");
        tokio::time::sleep(RETRY_EVERY).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
        assert_eq!(tokens.header(), "Bearer t3");
    }
}
