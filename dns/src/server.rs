//! The listeners: per address, one UDP receive loop on a thread of its own and one TCP
//! accept loop on the runtime. The UDP loop reads and writes datagrams in batches
//! (`recvmmsg`/`sendmmsg`), answers cluster names in place through its [`ResponseCache`],
//! and hands forwarded queries to tasks, bounded in number, which send their own answers.

use crate::handler::{Handler, Outcome, Pending, ResponseCache, Step};
use crate::wire::Transport;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg, setsockopt,
    sockopt,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::runtime::Handle;
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
/// Datagrams read, and answers written, per system call.
const BATCH: usize = 32;
/// How long an idle UDP loop waits for a datagram before it looks for shutdown again.
const IDLE_WAIT_MS: u16 = 100;
/// Waits for room in the socket's send buffer before the rest of a batch is dropped.
const SEND_WAITS: usize = 10;
const SEND_WAIT_MS: u16 = 10;
/// The UDP receive buffer asked for, in bytes.
const RECEIVE_BUFFER: usize = 1 << 20;

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

/// Starts the UDP loop of `socket` on a thread of its own; forwarded queries run on the
/// current runtime and send their answers through the same socket. The socket leaves the
/// runtime's reactor: registered there, every datagram would also wake a runtime thread.
pub(crate) fn spawn_udp(socket: UdpSocket, shared: Arc<Shared>) -> io::Result<()> {
    // Still nonblocking: the loop waits in poll(2), so it can look for shutdown, and the
    // forwarding tasks' sends never block the runtime.
    let socket = Arc::new(socket.into_std()?);
    // Room for bursts while the loop is off the CPU (NSD asks for the same); as root past
    // `net.core.rmem_max`.
    if setsockopt(&socket, sockopt::RcvBufForce, &RECEIVE_BUFFER).is_err() {
        let _ = setsockopt(&socket, sockopt::RcvBuf, &RECEIVE_BUFFER);
    }
    let runtime = Handle::current();
    std::thread::Builder::new()
        .name("ferry-dns-udp".into())
        .spawn(move || UdpLoop::new(socket, shared, runtime).run())?;
    Ok(())
}

/// One UDP socket's receive loop and its reused buffers.
struct UdpLoop {
    socket: Arc<std::net::UdpSocket>,
    shared: Arc<Shared>,
    runtime: Handle,
    cache: ResponseCache,
    receive: MultiHeaders<SockaddrStorage>,
    send: MultiHeaders<SockaddrStorage>,
    /// Queries may be as large as a datagram (EDNS); the whole of one is read.
    queries: Vec<Vec<u8>>,
    received: Vec<(usize, Option<SockaddrStorage>)>,
    answers: Vec<Vec<u8>>,
    destinations: Vec<Option<SockaddrStorage>>,
}

impl UdpLoop {
    fn new(socket: Arc<std::net::UdpSocket>, shared: Arc<Shared>, runtime: Handle) -> Self {
        Self {
            socket,
            shared,
            runtime,
            cache: ResponseCache::default(),
            receive: MultiHeaders::preallocate(BATCH, None),
            send: MultiHeaders::preallocate(BATCH, None),
            queries: (0..BATCH).map(|_| vec![0; usize::from(u16::MAX)]).collect(),
            received: Vec::with_capacity(BATCH),
            answers: (0..BATCH).map(|_| Vec::with_capacity(512)).collect(),
            destinations: Vec::with_capacity(BATCH),
        }
    }

    fn run(mut self) {
        while !self.shared.shutdown.is_cancelled() {
            match self.receive_batch() {
                Ok(()) => self.answer_batch(),
                Err(Errno::EAGAIN | Errno::EINTR) => self.wait(PollFlags::POLLIN, IDLE_WAIT_MS),
                Err(error) => {
                    tracing::debug!(%error, "dns: udp receive failed");
                    self.wait(PollFlags::POLLIN, IDLE_WAIT_MS);
                }
            }
        }
    }

    /// Reads what is queued, up to a batch, without waiting.
    fn receive_batch(&mut self) -> Result<(), Errno> {
        self.received.clear();
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = self
            .queries
            .iter_mut()
            .map(|buffer| [IoSliceMut::new(buffer)])
            .collect();
        let messages = recvmmsg(
            self.socket.as_raw_fd(),
            &mut self.receive,
            slices.iter_mut(),
            MsgFlags::empty(),
            None,
        )?;
        self.received
            .extend(messages.map(|message| (message.bytes, message.address)));
        Ok(())
    }

    fn answer_batch(&mut self) {
        self.destinations.clear();
        for k in 0..self.received.len() {
            let (len, address) = self.received[k];
            let Some(src) = address.as_ref().and_then(socket_addr) else {
                continue;
            };
            let n = self.destinations.len();
            let query = &self.queries[k][..len];
            let answer = &mut self.answers[n];
            let outcome = self.shared.handler.handle_cached(
                query,
                src,
                Transport::Udp,
                &mut self.cache,
                answer,
            );
            let reply_now = match outcome {
                Outcome::Reply => true,
                Outcome::Drop => false,
                Outcome::Pending(pending) => self.forward(pending, src, n),
            };
            if reply_now {
                self.destinations.push(address);
            }
        }
        self.send_batch();
    }

    /// Resolves `pending` in a task that sends its own answer; `true` when there is no room
    /// for another and its SERVFAIL is in `answers[n]`.
    fn forward(&mut self, pending: Box<Pending>, src: SocketAddr, n: usize) -> bool {
        let Ok(permit) = self.shared.pending.clone().try_acquire_owned() else {
            tracing::debug!(%src, "dns: too many forwarded queries in flight; SERVFAIL");
            self.answers[n] = pending.fail(&self.shared.handler);
            return true;
        };
        let socket = self.socket.clone();
        let shared = self.shared.clone();
        self.runtime.spawn(async move {
            let _permit = permit;
            let bytes = tokio::select! {
                bytes = pending.resolve(&shared.handler) => bytes,
                () = shared.shutdown.cancelled() => return,
            };
            send_udp(&socket, &bytes, src).await;
        });
        false
    }

    /// Writes `answers[..destinations.len()]`, waiting a little for buffer room if need be.
    fn send_batch(&mut self) {
        let count = self.destinations.len();
        let slices: Vec<[IoSlice<'_>; 1]> = self.answers[..count]
            .iter()
            .map(|answer| [IoSlice::new(answer)])
            .collect();
        let no_control: [ControlMessage<'_>; 0] = [];
        let mut sent = 0;
        let mut waits = 0;
        while sent < count {
            match sendmmsg(
                self.socket.as_raw_fd(),
                &mut self.send,
                &slices[sent..],
                &self.destinations[sent..],
                no_control,
                MsgFlags::empty(),
            ) {
                Ok(results) => sent += results.count().max(1),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) if waits < SEND_WAITS => {
                    waits += 1;
                    wait_for(&self.socket, PollFlags::POLLOUT, SEND_WAIT_MS);
                }
                Err(Errno::EAGAIN) => {
                    tracing::debug!(dropped = count - sent, "dns: udp send buffer full");
                    return;
                }
                Err(error) => {
                    // That one answer cannot go (its destination); the others can.
                    tracing::debug!(%error, "dns: udp send failed");
                    sent += 1;
                }
            }
        }
    }

    fn wait(&self, flags: PollFlags, ms: u16) {
        wait_for(&self.socket, flags, ms);
    }
}

fn wait_for(socket: &std::net::UdpSocket, flags: PollFlags, ms: u16) {
    let mut fds = [PollFd::new(socket.as_fd(), flags)];
    let _ = poll(&mut fds, PollTimeout::from(ms));
}

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// Sends a forwarded query's answer from its task: the socket is nonblocking, so a full send
/// buffer means a short sleep and another try, a few times.
async fn send_udp(socket: &std::net::UdpSocket, bytes: &[u8], dst: SocketAddr) {
    for _ in 0..SEND_WAITS {
        match socket.send_to(bytes, dst) {
            Ok(_) => return,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                tokio::time::sleep(Duration::from_millis(u64::from(SEND_WAIT_MS))).await;
            }
            Err(error) => {
                tracing::debug!(%error, %dst, "dns: udp send failed");
                return;
            }
        }
    }
    tracing::debug!(%dst, "dns: udp send buffer full; answer dropped");
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
