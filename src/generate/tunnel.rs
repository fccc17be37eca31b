//! `CONNECT` through a forward proxy, for `https://` targets.
//!
//! Hand-written rather than hyper-util's `Tunnel` because that one reports every refusal as
//! "unsuccessful tunnel": here a refusal keeps the proxy's status and, from pacer, the error
//! code of its JSON body (`pacer.host.forbidden`), which is what a user needs to fix it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::cause::{Failure, TunnelRefused};
use crate::BoxError;

/// The longest proxy response head read; pacer's are far shorter.
const MAX_HEAD: usize = 16 * 1024;
/// The most of a refusal's body read, for its error code.
const MAX_BODY: usize = 4 * 1024;

/// Opens a TCP connection to the proxy and asks it for a tunnel to the target.
#[derive(Clone)]
pub(super) struct ConnectTunnel {
    pub proxy: Uri,
    pub http: HttpConnector,
}

type Opening = Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, BoxError>> + Send>>;

impl tower::Service<Uri> for ConnectTunnel {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Opening;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // HttpConnector is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Opening {
        let proxy = self.proxy.clone();
        let connecting = self.http.call(proxy.clone());
        Box::pin(async move {
            let tcp = connecting
                .await
                .map_err(|e| Failure::boxed(format!("the proxy {}", authority(&proxy, 80)), e))?;
            let target = authority(&dst, 443);
            let tcp = open(tcp.into_inner(), &target).await?;
            Ok(TokioIo::new(tcp))
        })
    }
}

/// `host:port`, with the scheme's default port when the URI has none.
pub(super) fn authority(uri: &Uri, default_port: u16) -> String {
    let host = uri.host().unwrap_or_default();
    format!("{host}:{}", uri.port_u16().unwrap_or(default_port))
}

/// Sends `CONNECT target` on `tcp` and reads the answer; a 2xx leaves the tunnel open.
async fn open(mut tcp: TcpStream, target: &str) -> Result<TcpStream, BoxError> {
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    tcp.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() >= MAX_HEAD || tcp.read_buf(&mut buf).await? == 0 {
            return Err(TunnelRefused::new(target, None, None).into());
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok());
    if status.is_some_and(|s| (200..300).contains(&s)) {
        // A TLS client speaks first, so nothing past the head was read.
        return Ok(tcp);
    }
    let length = content_length(&head).unwrap_or(0).min(MAX_BODY);
    while buf.len() < end + length {
        if tcp.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            break;
        }
    }
    let body = &buf[end..buf.len().min(end + length)];
    Err(TunnelRefused::new(target, status, pacer_code(body)).into())
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        match name.trim().eq_ignore_ascii_case("content-length") {
            true => value.trim().parse().ok(),
            false => None,
        }
    })
}

/// The `code` of a JSON error body, such as pacer's `{"code": "pacer.host.forbidden", ...}`.
fn pacer_code(body: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(json.get("code")?.as_str()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_a_refusal_says() {
        let head = "HTTP/1.1 403 Forbidden\r\nContent-Length: 42\r\n\r\n";
        assert_eq!(content_length(head), Some(42));
        let body = br#"{"code":"pacer.host.forbidden","status":403}"#;
        assert_eq!(pacer_code(body).as_deref(), Some("pacer.host.forbidden"));
        assert_eq!(pacer_code(b"<html>"), None);
        let uri: Uri = "https://api.test/x".parse().unwrap();
        assert_eq!(authority(&uri, 443), "api.test:443");
    }
}
