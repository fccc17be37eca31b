//! Optional proxy authentication: 407 with a challenge for plain requests and for CONNECT,
//! credentials never forwarded, and nothing asked again inside an authenticated tunnel.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::support::external;
use crate::support::tunnel::{connect, curl, http1, pacer_with_ca, tls};
use crate::support::upstream::{start_upstream, TestUpstream};
use crate::support::*;

/// `jmeter:s3cret`, base64.
const GOOD: &str = "Basic am1ldGVyOnMzY3JldA==";

fn yaml(up: &TestUpstream) -> String {
    format!(
        "upstreams:\n  api:\n    base_url: {}\n    hosts: [api.test]\n\
         proxy_auth:\n  username: jmeter\n  password: s3cret\n",
        up.base_url()
    )
}

fn absolute(auth: Option<&str>) -> String {
    let auth = auth.map(|a| format!("Proxy-Authorization: {a}\r\n"));
    format!(
        "GET http://api.test/api/v2/users HTTP/1.1\r\nHost: api.test\r\n{}Connection: close\r\n\r\n",
        auth.unwrap_or_default()
    )
}

#[tokio::test]
async fn plain_requests_need_credentials_which_are_never_forwarded() {
    let up = start_upstream(false).await;
    let pacer = start_pacer(&yaml(&up), up.addr).await;
    for auth in [None, Some("Basic am1ldGVyOndyb25n"), Some("Bearer x")] {
        let res = raw_exchange(pacer.addr, absolute(auth).as_bytes()).await;
        assert!(res.starts_with("HTTP/1.1 407"), "{res}");
        assert!(
            res.contains("proxy-authenticate: Basic realm=\"pacer\""),
            "{res}"
        );
        assert!(res.contains("pacer.proxy.auth_required"), "{res}");
    }
    let res = raw_exchange(pacer.addr, absolute(Some(GOOD)).as_bytes()).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    let echo = json(&res.as_bytes()[res.find("\r\n\r\n").unwrap() + 4..]);
    assert!(
        echo["headers"].get("proxy-authorization").is_none(),
        "{echo}"
    );
}

#[tokio::test]
async fn connect_needs_credentials_before_the_200_and_not_inside() {
    let up = start_upstream(false).await;
    let dir = temp_dir("auth");
    let (pacer, ca) = pacer_with_ca(&yaml(&up), &dir).await;
    let ca_pem = std::fs::read_to_string(&ca).unwrap();
    let raw = b"CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n";
    let res = raw_exchange(pacer.addr, raw).await;
    assert!(res.starts_with("HTTP/1.1 407"), "{res}");
    assert!(res.contains("proxy-authenticate: Basic"), "{res}");
    // Credentials are checked before the host: an unauthenticated client learns nothing.
    let raw = b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n";
    assert!(raw_exchange(pacer.addr, raw)
        .await
        .starts_with("HTTP/1.1 407"));

    let auth = format!("Proxy-Authorization: {GOOD}\r\n");
    let (stream, head) = connect(pacer.addr, "api.test:443", &auth).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut send = http1(tls(stream, "api.test", &ca_pem).await.unwrap()).await;
    // Clients send Proxy-Authorization on the CONNECT only; the requests inside pass without it.
    let req = request("GET", "/inside").header("host", "api.test");
    let res = send
        .send_request(req.body(Full::<Bytes>::default()).unwrap())
        .await;
    let res = res.unwrap();
    assert_eq!(res.status(), 200);
    let echo = json(&res.into_body().collect().await.unwrap().to_bytes());
    assert_eq!(echo["path"], "/inside");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_and_without_proxy_credentials() {
    if !external::require_or_skip("curl", external::available("curl")) {
        return;
    }
    let up = start_upstream(false).await;
    let dir = temp_dir("auth-curl");
    let (pacer, ca) = pacer_with_ca(&yaml(&up), &dir).await;
    let ca = ca.to_str().unwrap();
    let url = "https://api.test/api/v2/users";
    let (code, _, err) = curl(pacer.addr, &["--cacert", ca, url]).await;
    assert_ne!(code, 0);
    assert!(err.contains("407"), "{err}");
    let args = ["--cacert", ca, "--proxy-user", "jmeter:s3cret", url];
    let (code, out, err) = curl(pacer.addr, &args).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(out.as_bytes())["path"], "/api/v2/users");
    // Plain HTTP through the proxy, too.
    let args = ["--proxy-user", "jmeter:s3cret", "http://api.test/plain"];
    let (code, out, err) = curl(pacer.addr, &args).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(out.as_bytes())["path"], "/plain");
}
