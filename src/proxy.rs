//! The proxy listener: accepts connections, serves HTTP/1.1 on them through the [`stack`], and
//! drains on shutdown.
//!
//! - `stack.rs`: the layer order, and why.
//! - `dispatch.rs`: each route's own stack, picked per request.
//! - `frontdoor.rs`: admission and target resolution.
//! - `observe.rs`: metrics and the log line for every answer the client sees.
//! - `rescue.rs`: errors to responses.
//! - `forward.rs`, `client.rs`, `pool.rs`, `tls_client.rs`: the upstream side; `pool.rs` keeps
//!   idle upstream connections per thread.
//! - `headers.rs`, `body.rs`: shared helpers; `body/timed.rs` cuts a stalled upstream body.
//! - [`half_close`] (in [`crate::exchange`]): a client's end of stream, told apart as a
//!   half-close or a client that left.
//! - `connect.rs`: CONNECT, which never enters the stack itself: it is refused, tunnelled blind
//!   (`tunnel.rs`), or intercepted (`intercept.rs`), whose inner requests then do.
//! - `upgrade.rs`: WebSocket and other upgrades, piped once the upstream answers 101.
//! - `workers.rs`: thread-per-core serving, one single-threaded runtime per worker thread.

pub mod body;
pub mod client;
pub mod connect;
pub mod dispatch;
pub mod forward;
pub mod frontdoor;
pub mod headers;
mod intercept;
pub mod observe;
mod pool;
mod refusals;
pub mod rescue;
pub mod stack;
mod tls_client;
pub mod tunnel;
pub mod upgrade;
pub mod workers;

pub use crate::exchange::half_close;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use http::{Method, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::connect::Connect;
use self::frontdoor::ConnInfo;
use self::stack::Stack;
use self::tunnel::Tracker;
use crate::config::Server;
use crate::shutdown::DrainDeadline;

/// How long a client may take to send a request head; slow-loris protection.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What every task serving a client holds: the services, and a [`Tracker`] that keeps the drain
/// waiting for it (connections, and the tunnels and upgrades that outlive their request).
#[derive(Clone)]
pub(crate) struct Shared {
    stack: Stack,
    connect: Arc<Connect>,
    server: Server,
    tracker: Tracker,
}

/// Binds the proxy listener with a backlog of `backlog` connections, or the OS maximum
/// (`net.core.somaxconn`, read on Linux; 4096 elsewhere) when None.
///
/// Not `TcpListener::bind`: its backlog is 128, and a burst of connects beyond it (a load tool
/// starting 1500 threads at once) leaves the rest waiting for a SYN retransmit, a whole second,
/// although pacer would accept them in microseconds.
pub fn listen(addr: SocketAddr, backlog: Option<u32>) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As `TcpListener::bind` does: a restarted pacer can bind while old connections linger.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog.unwrap_or_else(os_max_backlog))
}

/// The largest backlog the OS grants; a larger request is cut to it anyway.
fn os_max_backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}

/// Serves `stack` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// for up to `server.drain_timeout`, when it passes `deadline` (the stack's, so that requests
/// still queued are answered). CONNECT requests go to `connect`. Everything runs on the
/// caller's runtime; [`workers::serve`] spreads connections over threads of their own.
pub async fn serve(
    listener: TcpListener,
    stack: Stack,
    connect: Arc<Connect>,
    server: Server,
    shutdown: impl Future<Output = ()> + Send + 'static,
    deadline: DrainDeadline,
) -> anyhow::Result<()> {
    let incoming = Accepting::new(listener, shutdown);
    run_connections(incoming, stack, connect, server, deadline).await;
    tracing::info!("drain finished");
    Ok(())
}

/// Where a connection loop gets its connections: a listener, or a worker's inbox.
pub(crate) trait Connections {
    /// The next connection; None once no more will come.
    async fn next(&mut self) -> Option<(TcpStream, SocketAddr)>;
}

/// A listener, until a shutdown future resolves.
pub(crate) struct Accepting<S> {
    listener: TcpListener,
    shutdown: Pin<Box<S>>,
}

impl<S> Accepting<S> {
    pub(crate) fn new(listener: TcpListener, shutdown: S) -> Accepting<S> {
        Accepting {
            listener,
            shutdown: Box::pin(shutdown),
        }
    }
}

impl<S: Future<Output = ()>> Connections for Accepting<S> {
    async fn next(&mut self) -> Option<(TcpStream, SocketAddr)> {
        loop {
            tokio::select! {
                _ = self.shutdown.as_mut() => {
                    tracing::info!("stopped accepting; draining in-flight requests");
                    return None;
                }
                accepted = self.listener.accept() => match accepted {
                    Ok(conn) => return Some(conn),
                    Err(e) => accept_error(e).await,
                },
            }
        }
    }
}

/// Spawns a task for every connection `next` yields until it yields None (accepting stopped),
/// then drains: connections close gracefully and the call returns once all have finished, or
/// after `server.drain_timeout`. Then `deadline` passes, and requests still queued get their
/// 503 within [`DRAIN_ANSWER_GRACE`] before the rest is cut.
pub(crate) async fn run_connections(
    mut incoming: impl Connections,
    stack: Stack,
    connect: Arc<Connect>,
    server: Server,
    deadline: DrainDeadline,
) {
    // Connections watch `drain` to start a graceful close; each holds a token of `tasks` (in
    // its Tracker, which tunnels and upgrades clone), so `tasks.wait()` ends once every one has
    // finished. Dropped unfinished (the caller gave up on the drain), the guard still cancels,
    // so connections close rather than outlive their listener.
    let drain = CancellationToken::new();
    let _drain_on_drop = drain.clone().drop_guard();
    let tasks = TaskTracker::new();
    let shared = Shared {
        stack,
        connect,
        server,
        tracker: Tracker::new(drain.clone(), &tasks, server.drain_timeout),
    };
    while let Some((stream, peer)) = incoming.next().await {
        tokio::spawn(connection(stream, peer, shared.clone()));
    }
    drain.cancel();
    drop(shared);
    tasks.close();
    tracing::debug!("stopped accepting; draining in-flight requests");
    if tokio::time::timeout(server.drain_timeout, tasks.wait())
        .await
        .is_ok()
    {
        tracing::debug!("drained");
        return;
    }
    deadline.pass();
    let answered = tokio::time::timeout(DRAIN_ANSWER_GRACE, tasks.wait()).await;
    tracing::warn!(
        timeout_s = server.drain_timeout.as_secs_f64(),
        all_answered = answered.is_ok(),
        "drain timeout passed; queued requests answered 503, closing the remaining connections"
    );
}

/// After the drain timeout, how long queued requests have to get their 503 out: writing an
/// answer on loopback or a LAN takes milliseconds, so this only bounds a client that reads
/// nothing.
const DRAIN_ANSWER_GRACE: Duration = Duration::from_secs(1);

/// Accept fails when the process is out of file descriptors or the peer reset early. Backing off
/// briefly keeps the loop from spinning while connections close and free descriptors.
pub(crate) async fn accept_error(e: std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// Serves one client connection.
fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Shared,
) -> impl Future<Output = ()> + Send + 'static {
    let _ = stream.set_nodelay(true);
    let info = ConnInfo {
        peer,
        tunnel_upstream: None,
    };
    let client = half_close::ClientConn::default();
    serve_http_as(
        TokioIo::new(client.wrap(stream)),
        info,
        shared,
        Some(client),
    )
}

/// Serves HTTP/1.1 on a client connection: a plain one, or the inside of an intercepted CONNECT.
///
/// Not an `async fn`, and the connection is boxed: every open connection keeps this future for
/// its whole life, and an `async fn` would keep its arguments a second time beside the
/// connection made from them (1.9 KiB per connection in all, about 1.1 KiB this way).
fn serve_http<I>(io: I, info: ConnInfo, shared: Shared) -> impl Future<Output = ()> + Send + 'static
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    // Not wrapped: inside TLS a half-close is passed on as it is. The state still carries the
    // deadline of a streamed answer, which a client that stops reading must not outlive.
    serve_http_as(io, info, shared, Some(half_close::ClientConn::default()))
}

/// [`serve_http`], on a stream whose half-close `client` watches (see `half_close.rs`).
fn serve_http_as<I>(
    io: I,
    info: ConnInfo,
    shared: Shared,
    client: Option<half_close::ClientConn>,
) -> impl Future<Output = ()> + Send + 'static
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let tracker = shared.tracker.clone();
    let builder = http1_server(shared.server);
    let serve = Serve {
        shared,
        info,
        client: client.clone(),
    };
    let mut conn = Box::pin(builder.serve_connection(io, serve).with_upgrades());
    async move {
        // The drain future is polled once to register the task's waker, and after that only
        // when the cheap check (`is_cancelled`, one atomic load) says drain has begun: polling
        // it on every wake-up (as a `select!` would) takes the token's lock every time.
        let mut draining = std::pin::pin!(tracker.draining());
        let mut watching = true;
        let mut registered = false;
        let mut half_close = half_close::Watch::new(client);
        let result = std::future::poll_fn(|cx| {
            if watching && (!registered || tracker.drain_started()) {
                registered = true;
                if draining.as_mut().poll(cx).is_ready() {
                    watching = false;
                    conn.as_mut().graceful_shutdown();
                }
            }
            let polled = conn.as_mut().poll(cx);
            if polled.is_pending() {
                if half_close.half_closed() {
                    conn.as_mut().graceful_shutdown();
                    if let Poll::Ready(done) = conn.as_mut().poll(cx) {
                        return Poll::Ready(done);
                    }
                }
                if half_close.poll_cut_off(cx) {
                    return Poll::Ready(Ok(()));
                }
                // Ending the connection drops the answer's body and the slots it holds; the
                // body counts the cut (`body/timed.rs`).
                if half_close.poll_answer_overdue(cx) {
                    tracing::debug!(peer = %info.peer, "answer not read by its deadline; closing");
                    return Poll::Ready(Ok(()));
                }
            }
            polled
        })
        .await;
        if let Err(e) = result {
            tracing::debug!(peer = %info.peer, error = %e, "connection ended with an error");
        }
    }
}

fn http1_server(server: Server) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // Room past the configured header limit, so an oversized head still parses and gets
        // pacer's JSON 431 instead of hyper's bare one.
        .max_buf_size((server.max_header_bytes * 2).max(16 * 1024));
    // The header count stays at hyper's default of 100 fields (Envoy's default limit too).
    // Raising it makes hyper allocate two index arrays of that many entries for every request
    // head it parses: two 16 KiB allocations per request at 512, a measured 2% of pacer's
    // instructions per request. Past 100 fields hyper itself answers 431, without a body.
    builder
}

/// What hyper keeps per connection for the request in flight: the stack's future or CONNECT's.
/// Made before hyper stores it, so the per-connection box hyper sizes for it (and keeps while
/// the connection idles) is one of these, not an `async` block holding the request too.
type Handled = futures_util::future::Either<
    observe::ObserveFuture<
        Pin<Box<dyn Future<Output = Result<http::Response<body::Body>, Infallible>> + Send>>,
    >,
    <Stack as tower::Service<Request<Incoming>>>::Future,
>;

/// The service hyper calls for each request on a connection. A named type rather than
/// `service_fn` and a closure, so that the future's type is spelled out ([`Handled`]).
struct Serve {
    shared: Shared,
    info: ConnInfo,
    client: Option<half_close::ClientConn>,
}

impl hyper::service::Service<Request<Incoming>> for Serve {
    type Response = http::Response<body::Body>;
    type Error = Infallible;
    type Future = Handled;

    fn call(&self, req: Request<Incoming>) -> Handled {
        handle(&self.shared, self.info, self.client.as_ref(), req)
    }
}

/// Sends one request into the stack (or to CONNECT handling). It takes from `shared` only what
/// the request needs, so an ordinary request clones the stack and nothing else (the
/// connection's services are `Arc`s that every request would otherwise touch).
fn handle(
    shared: &Shared,
    info: ConnInfo,
    conn: Option<&half_close::ClientConn>,
    mut req: Request<Incoming>,
) -> Handled {
    use futures_util::future::Either;
    let upgrade = req.method() == Method::CONNECT || client::is_upgrade(req.headers());
    if let Some(conn) = conn {
        if upgrade {
            conn.pass_end();
        }
        conn.request(http_body::Body::is_end_stream(req.body()));
        req.extensions_mut().insert(conn.clone());
    }
    if req.method() == Method::CONNECT {
        // Counted like every other answer (`pacer_requests_total`, route `unmatched`).
        let answer = connect::handle(shared.clone(), info, req);
        return Either::Left(shared.stack.watch(Method::CONNECT, answer));
    }
    // Routed and forwarded alike by the normalised path, so that `%73cripts` or `x/../scripts`
    // cannot pass a route's limits unshaped (see `route::normalize`).
    if let Some(uri) = crate::route::normalize_uri(req.uri()) {
        *req.uri_mut() = uri;
    }
    req.extensions_mut().insert(info);
    if upgrade {
        // The upgrade hook in the client takes this, so the pipe it starts counts for drain.
        req.extensions_mut().insert(shared.tracker.clone());
    }
    // The stack is always ready: limits wait inside its future, not in `poll_ready`.
    Either::Right(tower::Service::call(&mut shared.stack.clone(), req))
}
