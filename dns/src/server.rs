//! The listeners: one UDP loop and one TCP accept loop per address. Cluster answers are
//! written from the UDP loop itself; forwarded queries run as tasks, bounded in number.

use crate::handler::{Handler, Pending, Step};
use crate::wire::Transport;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// Forwarded queries in flight at once (CoreDNS's `max_concurrent 1000`); beyond, SERVFAIL.
const MAX_PENDING: usize = 1000;
/// Open TCP connections at once; beyond, new ones are closed.
const MAX_TCP_CONNECTIONS: usize = 1000;
/// A TCP connection idle this long between queries is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Time to read a whole query, or write a response, once started.
const TCP_IO: Duration = Duration::from_secs(5);
/// A pause after an accept error (out of descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What the loops share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub handler: Handler,
    pub pending: Arc<Semaphore>,
    pub connections: Arc<Semaphore>,
    pub shutdown: CancellationToken,
}

impl Shared {
    pub(crate) fn new(handler: Handler) -> Self {
        Self {
            handler,
            pending: Arc::new(Semaphore::new(MAX_PENDING)),
            connections: Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS)),
            shutdown: CancellationToken::new(),
        }
    }
}

pub(crate) async fn serve_udp(socket: UdpSocket, shared: Arc<Shared>) {
    let socket = Arc::new(socket);
    // Queries may be as large as a datagram (EDNS); the whole of one is read.
    let mut buffer = vec![0; usize::from(u16::MAX)];
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buffer) => received,
            () = shared.shutdown.cancelled() => return,
        };
        let (len, src) = match received {
            Ok(received) => received,
            Err(error) => {
                tracing::debug!(%error, "dns: udp receive failed");
                continue;
            }
        };
        match shared.handler.handle(&buffer[..len], src, Transport::Udp) {
            Step::Reply(bytes) => send_udp(&socket, &bytes, src).await,
            Step::Drop => {}
            Step::Pending(pending) => spawn_pending(pending, &socket, src, &shared).await,
        }
    }
}

/// Resolves `pending` in a task of its own, so the loop keeps answering meanwhile.
async fn spawn_pending(
    pending: Box<Pending>,
    socket: &Arc<UdpSocket>,
    src: SocketAddr,
    shared: &Arc<Shared>,
) {
    let Ok(permit) = shared.pending.clone().try_acquire_owned() else {
        tracing::debug!(%src, "dns: too many forwarded queries in flight; SERVFAIL");
        send_udp(socket, &pending.fail(&shared.handler), src).await;
        return;
    };
    let socket = socket.clone();
    let shared = shared.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let bytes = tokio::select! {
            bytes = pending.resolve(&shared.handler) => bytes,
            () = shared.shutdown.cancelled() => return,
        };
        send_udp(&socket, &bytes, src).await;
    });
}

async fn send_udp(socket: &UdpSocket, bytes: &[u8], dst: SocketAddr) {
    if let Err(error) = socket.send_to(bytes, dst).await {
        tracing::debug!(%error, %dst, "dns: udp send failed");
    }
}

pub(crate) async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shared.shutdown.cancelled() => return,
        };
        let (stream, src) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "dns: tcp accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
            tracing::debug!(%src, "dns: too many tcp connections; closed");
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                result = serve_connection(stream, src, &shared) => {
                    if let Err(error) = result {
                        tracing::debug!(%error, %src, "dns: tcp connection ended");
                    }
                }
                () = shared.shutdown.cancelled() => {}
            }
        });
    }
}

/// Length-prefixed queries answered in order until the client closes or idles (RFC 7766).
async fn serve_connection(
    mut stream: TcpStream,
    src: SocketAddr,
    shared: &Shared,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    loop {
        let len = match timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            Ok(Err(error)) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(error)) => return Err(error),
            Err(_) => return Ok(()),
        };
        let mut query = vec![0; len];
        timeout(TCP_IO, stream.read_exact(&mut query))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "reading a query"))??;
        let bytes = match shared.handler.handle(&query, src, Transport::Tcp) {
            Step::Reply(bytes) => bytes,
            Step::Drop => return Ok(()),
            Step::Pending(pending) => pending.resolve(&shared.handler).await,
        };
        let len = u16::try_from(bytes.len()).map_err(io::Error::other)?;
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&bytes);
        timeout(TCP_IO, stream.write_all(&framed))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "writing a response"))??;
    }
}
