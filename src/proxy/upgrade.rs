//! Protocol upgrades (WebSocket, the platform's notification channel) through the stack.
//!
//! An upgrade request travels the stack like any other, so it is admitted, routed and shaped
//! once. When the upstream answers 101, both connections are handed over by hyper and piped to
//! each other; from then on the bytes are WebSocket frames and nothing is shaped. The hook in
//! the upstream client is two calls: [`Pending::take`] before sending, and
//! [`Pending::on_response`] after the head arrives.

use http::{Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::tunnel::{self, Tracker};
use crate::exchange::is_upgrade;

/// The client's half of an upgrade, waiting for the upstream's answer.
pub struct Pending {
    client: OnUpgrade,
    tracker: Tracker,
}

// === impl Pending ===

impl Pending {
    /// Takes the client's side of the upgrade out of a request that asks for one. The listener
    /// puts a [`Tracker`] on such requests; a request without it (built in a test, or on a
    /// connection that cannot upgrade) is forwarded as a plain request.
    pub fn take<B>(req: &mut Request<B>) -> Option<Pending> {
        if !is_upgrade(req.headers()) {
            return None;
        }
        let tracker = req.extensions_mut().remove::<Tracker>()?;
        Some(Pending {
            client: hyper::upgrade::on(req),
            tracker,
        })
    }

    /// On a 101, pipes the two upgraded connections in a task of their own; on anything else,
    /// drops the client's half, and the client's connection goes on serving HTTP.
    pub fn on_response<B>(self, res: &mut Response<B>) {
        if res.status() != StatusCode::SWITCHING_PROTOCOLS {
            return;
        }
        let upstream = hyper::upgrade::on(res);
        tokio::spawn(splice(self.client, upstream, self.tracker));
    }
}

async fn splice(client: OnUpgrade, upstream: OnUpgrade, tracker: Tracker) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade was not completed");
            return;
        }
    };
    match tunnel::pipe(TokioIo::new(client), TokioIo::new(upstream), &tracker).await {
        Ok((up, down)) => tracing::debug!(up, down, "upgraded connection closed"),
        Err(e) => tracing::debug!(error = %e, "upgraded connection ended with an error"),
    }
}
