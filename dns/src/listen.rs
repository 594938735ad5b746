//! The listening sockets. An IPv6 address listens on IPv6 only (`IPV6_V6ONLY`), so that
//! `[::]:PORT` and `0.0.0.0:PORT` can both be bound: by default Linux would let the IPv6
//! wildcard take the IPv4 port too, and the second bind would fail with EADDRINUSE.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use tokio::net::{TcpListener, UdpSocket};

/// Connections waiting to be accepted, as tokio's `TcpListener::bind`.
const BACKLOG: i32 = 1024;

pub(crate) fn udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket(addr, Type::DGRAM, Protocol::UDP)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

pub(crate) fn tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket(addr, Type::STREAM, Protocol::TCP)?;
    // As tokio's `TcpListener::bind`: a restarted daemon rebinds despite TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

fn socket(addr: SocketAddr, kind: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_ipv6_and_ipv4_wildcards_bind_the_same_port() {
        let v6 = udp("[::]:0".parse().unwrap()).unwrap();
        let port = v6.local_addr().unwrap().port();
        let v4 = udp(SocketAddr::from(([0, 0, 0, 0], port))).unwrap();
        let v6_tcp = tcp(SocketAddr::from(([0u16; 8], port))).unwrap();
        let v4_tcp = tcp(SocketAddr::from(([0, 0, 0, 0], port))).unwrap();
        for (udp, tcp) in [(&v6, &v6_tcp), (&v4, &v4_tcp)] {
            assert_eq!(udp.local_addr().unwrap().port(), port);
            assert_eq!(tcp.local_addr().unwrap().port(), port);
        }
        // Each family reaches its own socket.
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"v4", ("127.0.0.1", port)).unwrap();
        let mut buffer = [0; 8];
        let (len, _) = v4.recv_from(&mut buffer).await.unwrap();
        assert_eq!(&buffer[..len], b"v4");
        let client = std::net::UdpSocket::bind("[::1]:0").unwrap();
        client.send_to(b"v6", ("::1", port)).unwrap();
        let (len, _) = v6.recv_from(&mut buffer).await.unwrap();
        assert_eq!(&buffer[..len], b"v6");
    }
}
