//! A `NETLINK_SOCK_DIAG` socket: dump the connected UDP sockets of the network namespace it
//! was created in, and destroy some of them.

use super::wire::{self, InetDiagMsg, Reply};
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

/// How long one reply may take before the request is given up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);
/// Receive buffer: the kernel fills dump datagrams up to about 32 KiB.
const BUFFER: usize = 64 * 1024;

/// What went wrong talking to sock_diag.
#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    /// A system call failed (`socket`, `sendto`, `recv`, ...).
    #[error("{action}: {errno}")]
    Sys {
        action: &'static str,
        #[source]
        errno: Errno,
    },
    /// The kernel refused the request.
    #[error("{action} refused: {errno}")]
    Refused {
        action: &'static str,
        #[source]
        errno: Errno,
    },
}

impl DiagError {
    /// The kernel's or the system call's errno.
    pub fn errno(&self) -> Errno {
        match self {
            Self::Sys { errno, .. } | Self::Refused { errno, .. } => *errno,
        }
    }
}

/// A sock_diag socket bound (by creation) to the calling thread's network namespace.
#[derive(Debug)]
pub struct DiagSocket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl DiagSocket {
    /// Opens a socket in the calling thread's current network namespace.
    pub fn open() -> Result<Self, DiagError> {
        let sys = |action| move |errno| DiagError::Sys { action, errno };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )
        .map_err(sys("socket(NETLINK_SOCK_DIAG)"))?;
        let timeout = TimeVal::new(i64::try_from(REPLY_TIMEOUT.as_secs()).unwrap_or(1), 0);
        setsockopt(&fd, sockopt::ReceiveTimeout, &timeout).map_err(sys("SO_RCVTIMEO"))?;
        Ok(Self {
            fd,
            seq: 0,
            buf: vec![0; BUFFER],
        })
    }

    /// The connected UDP sockets of `family` (`AF_INET6` includes v4-mapped ones) accepted by
    /// the kernel-side filter: remote port `dport` if `Some`, and `bytecode` if any.
    pub fn connected_udp(
        &mut self,
        family: u8,
        dport: Option<u16>,
        bytecode: Option<&[u8]>,
    ) -> Result<Vec<InetDiagMsg>, DiagError> {
        let seq = self.next_seq();
        self.send(&wire::dump_request(seq, family, dport, bytecode), "dump")?;
        let mut found = Vec::new();
        loop {
            for (header, reply) in self.receive("dump")? {
                if header.seq != seq {
                    continue;
                }
                match reply {
                    Reply::Socket(socket) if socket.family == family => found.push(socket),
                    Reply::Socket(_) | Reply::Other(_) => {}
                    Reply::Done(0) => return Ok(found),
                    Reply::Done(error) | Reply::Error(error) => {
                        return Err(DiagError::Refused {
                            action: "dump",
                            errno: Errno::from_raw(-error),
                        });
                    }
                }
            }
        }
    }

    /// Destroys `socket` (as dumped): its owner's next call fails with `ECONNABORTED` and the
    /// socket is disconnected. `ENOENT` means it is gone already.
    pub fn destroy(&mut self, socket: &InetDiagMsg) -> Result<(), DiagError> {
        let seq = self.next_seq();
        self.send(&wire::destroy_request(seq, socket), "SOCK_DESTROY")?;
        loop {
            for (header, reply) in self.receive("SOCK_DESTROY")? {
                match reply {
                    Reply::Error(0) if header.seq == seq => return Ok(()),
                    Reply::Error(error) if header.seq == seq => {
                        return Err(DiagError::Refused {
                            action: "SOCK_DESTROY",
                            errno: Errno::from_raw(-error),
                        });
                    }
                    _ => {}
                }
            }
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&self, message: &[u8], action: &'static str) -> Result<(), DiagError> {
        let kernel = NetlinkAddr::new(0, 0);
        loop {
            match sendto(self.fd.as_raw_fd(), message, &kernel, MsgFlags::empty()) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(errno) => return Err(DiagError::Sys { action, errno }),
            }
        }
    }

    /// The messages of the next datagram; times out after [`REPLY_TIMEOUT`] (`EAGAIN`).
    fn receive(&mut self, action: &'static str) -> Result<Vec<(wire::NlMsgHdr, Reply)>, DiagError> {
        loop {
            match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
                Ok(len) => return Ok(wire::replies(&self.buf[..len])),
                Err(Errno::EINTR) => {}
                Err(errno) => return Err(DiagError::Sys { action, errno }),
            }
        }
    }
}
