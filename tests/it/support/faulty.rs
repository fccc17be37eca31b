//! An upstream that misbehaves on purpose, written on raw sockets so every fault is exact: it
//! reads each request head (and a declared body), records it, and answers as `pick` says.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the upstream does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `200 ok`, keep-alive.
    Ok,
    /// The head of a 10 MB answer and its first 1 KB, then nothing, with the connection open.
    StallBody,
    /// Never answers; the connection stays open.
    Hold,
    /// `200 ok`, then closes the connection without saying so (no `Connection: close`).
    OkThenClose,
    /// `200 ok` to the first request on a connection; a later one is read, then the connection
    /// closes without an answer, as when an idle timer fires just as the request arrives.
    ClosesOnReuse,
    /// An answer with both Content-Length and `Transfer-Encoding: chunked`.
    LengthAndChunked,
    /// A [`BIG_DECLARED`] answer sent as fast as the reader takes it.
    BigBody,
}

/// The declared size of [`Fault::StallBody`]'s answer, and what it sends of it.
pub const STALL_DECLARED: usize = 10 * 1024 * 1024;
pub const STALL_SENT: usize = 1024;
/// The size of [`Fault::BigBody`]'s answer: far more than every socket and proxy buffer between
/// the upstream and a client that stops reading can hold.
pub const BIG_DECLARED: usize = 256 * 1024 * 1024;

pub struct Faulty {
    pub addr: SocketAddr,
    /// Every request head received, in order (request line and headers, as sent).
    pub heads: Arc<Mutex<Vec<String>>>,
    /// Connections accepted.
    pub accepted: Arc<Mutex<usize>>,
    /// Connections the client (pacer) closed.
    pub closed: Arc<Mutex<usize>>,
    task: JoinHandle<()>,
}

impl Faulty {
    /// The request heads received so far whose request line starts with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        let heads = self.heads.lock().unwrap();
        heads.iter().filter(|h| h.starts_with(prefix)).count()
    }

    pub fn accepted(&self) -> usize {
        *self.accepted.lock().unwrap()
    }

    pub fn closed(&self) -> usize {
        *self.closed.lock().unwrap()
    }
}

impl Drop for Faulty {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the upstream on 127.0.0.1:0; `pick` chooses the fault from the request head.
pub async fn start_faulty(pick: fn(&str) -> Fault) -> Faulty {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let accepted = Arc::new(Mutex::new(0));
    let closed = Arc::new(Mutex::new(0));
    let (h, a, c) = (heads.clone(), accepted.clone(), closed.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            *a.lock().unwrap() += 1;
            let (h, c) = (h.clone(), c.clone());
            tokio::spawn(async move {
                if serve(stream, h, pick).await {
                    *c.lock().unwrap() += 1;
                }
            });
        }
    });
    Faulty {
        addr,
        heads,
        accepted,
        closed,
        task,
    }
}

/// Serves one connection; true when the client closed it.
async fn serve(
    mut stream: TcpStream,
    heads: Arc<Mutex<Vec<String>>>,
    pick: fn(&str) -> Fault,
) -> bool {
    let mut served = 0;
    while let Some(head) = read_request(&mut stream).await {
        let fault = pick(&head);
        if fault == Fault::ClosesOnReuse && served > 0 {
            return false;
        }
        served += 1;
        heads.lock().unwrap().push(head);
        let answer: &[u8] = match fault {
            Fault::Ok | Fault::OkThenClose | Fault::ClosesOnReuse => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            Fault::LengthAndChunked => {
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
            }
            Fault::StallBody => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {STALL_DECLARED}\r\n\r\n");
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&[b'x'; STALL_SENT]).await;
                return hang(stream).await;
            }
            Fault::Hold => return hang(stream).await,
            Fault::BigBody => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {BIG_DECLARED}\r\n\r\n");
                let _ = stream.write_all(head.as_bytes()).await;
                let chunk = vec![b'x'; 64 * 1024];
                for _ in 0..BIG_DECLARED / chunk.len() {
                    if stream.write_all(&chunk).await.is_err() {
                        return true;
                    }
                }
                continue;
            }
        };
        if stream.write_all(answer).await.is_err() || fault == Fault::OkThenClose {
            return false;
        }
    }
    true
}

/// Keeps the connection open (reading and discarding) until the peer closes it.
async fn hang(mut stream: TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return true;
        }
    }
    false
}

/// Reads one request head and its Content-Length body; None once the peer has gone.
pub async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => head.push(byte[0]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut body = vec![0u8; content_length(&head)];
    stream.read_exact(&mut body).await.ok()?;
    Some(head)
}

fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Reads from `stream` until the peer closes it or `within` passes; the bytes read, and
/// whether it closed.
pub async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (usize, bool) {
    let mut total = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (total, true),
            Ok(Ok(n)) => total += n,
            Err(_) => return (total, false),
        }
    }
}
