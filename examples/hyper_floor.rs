//! The floor for `bench/passthrough.sh` (`FLOOR=1`): the least a proxy built on hyper does per
//! request, with none of pacer's work (no routes, limits, retries, metrics, timeouts or header
//! clean-up). Two threads, each a single-threaded runtime on its own `SO_REUSEPORT` listener
//! with its own stack of idle upstream connections, as pacer's workers have. How close pacer
//! comes to this says what pacer's own layers cost; how close this comes to nginx says what
//! hyper and tokio cost on the same machine.
//!
//!     cargo run --release --example hyper_floor -- 127.0.0.1:8081 127.0.0.1:8080
//!
//! A benchmark aid only: it unwraps every failure and serves plain HTTP to one upstream.

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

thread_local! {
    static IDLE: RefCell<Vec<SendRequest<Incoming>>> = const { RefCell::new(Vec::new()) };
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hyper_floor LISTEN_ADDR UPSTREAM_ADDR";
    let listen: SocketAddr = args.next().expect(usage).parse().expect(usage);
    let upstream: &'static str = Box::leak(args.next().expect(usage).into_boxed_str());
    let threads: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || serve(listen, upstream)))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn serve(listen: SocketAddr, upstream: &'static str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseport(true).unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(listen).unwrap();
        let listener: TcpListener = socket.listen(1024).unwrap();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| forward(req, upstream));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

async fn forward(
    req: Request<Incoming>,
    upstream: &'static str,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut sender = match IDLE.with(|idle| idle.borrow_mut().pop()) {
        Some(sender) => sender,
        None => {
            let stream = TcpStream::connect(upstream).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            sender
        }
    };
    let (mut parts, body) = req.into_parts();
    parts.uri = parts
        .uri
        .path_and_query()
        .unwrap()
        .as_str()
        .parse()
        .unwrap();
    sender.ready().await.unwrap();
    let res = sender
        .send_request(Request::from_parts(parts, body))
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    IDLE.with(|idle| idle.borrow_mut().push(sender));
    Ok(Response::from_parts(parts, Full::new(bytes)))
}
