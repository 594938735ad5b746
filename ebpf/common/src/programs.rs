//! Program names (the function names in `ferry-ebpf`, which aya looks programs up by).

/// `cgroup/connect4`: translate a TCP/UDP `connect()` to a service address.
pub const CONNECT4: &str = "connect4";
/// `cgroup/connect6`.
pub const CONNECT6: &str = "connect6";
/// `cgroup/sendmsg4`: translate an unconnected UDP `sendmsg()`.
pub const SENDMSG4: &str = "sendmsg4";
/// `cgroup/sendmsg6`.
pub const SENDMSG6: &str = "sendmsg6";
/// `cgroup/recvmsg4`: report the service address as the source of a reply.
pub const RECVMSG4: &str = "recvmsg4";
/// `cgroup/recvmsg6`.
pub const RECVMSG6: &str = "recvmsg6";
/// `cgroup/getpeername4`: report the service address as the peer.
pub const GETPEERNAME4: &str = "getpeername4";
/// `cgroup/getpeername6`.
pub const GETPEERNAME6: &str = "getpeername6";
/// `cgroup/sock_release`: forget a closing TCP socket's reverse-NAT record.
pub const SOCK_RELEASE: &str = "sock_release";
/// `classifier`, tc ingress of an external interface: DNAT (and SNAT for masqueraded flows)
/// of packets to `EXT_FRONTENDS`, reverse NAT + redirect of replies to masqueraded flows.
pub const NODEPORT_INGRESS: &str = "nodeport_ingress";
/// `classifier`, tc egress of the same interface: reverse NAT of replies to flows that were not
/// masqueraded (the backend's source becomes the frontend again).
pub const NODEPORT_EGRESS: &str = "nodeport_egress";

/// The cgroup programs of socket-level load balancing, attached together in this order:
/// `sock_release` before the hooks that make the records it forgets.
pub const SOCKET_LB: [&str; 9] = [
    SOCK_RELEASE,
    CONNECT4,
    CONNECT6,
    SENDMSG4,
    SENDMSG6,
    RECVMSG4,
    RECVMSG6,
    GETPEERNAME4,
    GETPEERNAME6,
];

/// Every program the object defines.
pub const ALL: [&str; 11] = [
    SOCK_RELEASE,
    CONNECT4,
    CONNECT6,
    SENDMSG4,
    SENDMSG6,
    RECVMSG4,
    RECVMSG6,
    GETPEERNAME4,
    GETPEERNAME6,
    NODEPORT_INGRESS,
    NODEPORT_EGRESS,
];
