//! `udpwatch`: a long-lived client, to watch what happens to one connection while the
//! Services it uses change.
//!
//! ```text
//! udpwatch [--cgroup DIR] udp ADDR SECS       connected UDP: a datagram every 20 ms
//! udpwatch [--cgroup DIR] tcp-hold ADDR SECS  one TCP connection: a line echoed every 100 ms
//! ```
//! With `--cgroup`, the process first moves itself into that cgroup, so its sockets are subject
//! to the socket-LB programs attached there.
//!
//! Events are printed one per line as they happen (flushed), `t` in milliseconds since start:
//! * `connected t=<ms> <local>` (udp) / `connected t=<ms> <name>` (tcp-hold, the server's
//!   greeting line);
//! * `reply t=<ms> <name>`: the first reply, and each reply from another backend than the one
//!   before (the first word of the datagram);
//! * `destroyed t=<ms> <error>`: the socket failed with `ECONNABORTED`, or with another error
//!   while `ECONNABORTED` was pending (`SO_ERROR`): destroyed by `SOCK_DESTROY`, which also
//!   disconnects it, so a `send` sees `EDESTADDRREQ` first; udp then connects a new socket;
//! * `echoes t=<ms> <n>` (tcp-hold): every tenth line echoed back;
//! * `error t=<ms> <error>`: any other failure; udp reconnects, tcp-hold stops (exit 1);
//! * last, `summary order=<names,...> replies=<n> destroyed=<ms,...>` (udp) or
//!   `summary echoes=<n>` (tcp-hold).

use std::io::{BufRead as _, BufReader, ErrorKind, Write as _};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

const UDP_TICK: Duration = Duration::from_millis(20);
const TCP_TICK: Duration = Duration::from_millis(100);
const TIMEOUT: Duration = Duration::from_secs(2);

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = ferry_tests::join_cgroup_arg(&mut args) {
        println!("error t=0 {e}");
        std::process::exit(1);
    }
    let (mode, addr, secs) = match args.as_slice() {
        [mode, addr, secs] => (
            mode.as_str(),
            addr.parse::<SocketAddr>(),
            secs.parse::<u64>(),
        ),
        _ => usage(),
    };
    let (Ok(addr), Ok(secs)) = (addr, secs) else {
        usage()
    };
    let watch = Watch::new(Duration::from_secs(secs));
    let code = match mode {
        "udp" => udp(&watch, addr),
        "tcp-hold" => tcp_hold(&watch, addr),
        _ => usage(),
    };
    std::process::exit(code);
}

fn usage() -> ! {
    eprintln!("usage: udpwatch [--cgroup DIR] udp|tcp-hold ADDR SECS");
    std::process::exit(2);
}

/// The clock and the output.
struct Watch {
    started: Instant,
    duration: Duration,
}

impl Watch {
    fn new(duration: Duration) -> Self {
        Self {
            started: Instant::now(),
            duration,
        }
    }

    fn ms(&self) -> u128 {
        self.started.elapsed().as_millis()
    }

    fn running(&self) -> bool {
        self.started.elapsed() < self.duration
    }

    fn event(&self, kind: &str, what: &str) {
        println!("{kind} t={} {what}", self.ms());
        let _ = std::io::stdout().flush();
    }
}

fn udp(watch: &Watch, addr: SocketAddr) -> i32 {
    let mut socket: Option<UdpSocket> = None;
    let (mut order, mut destroyed): (Vec<String>, Vec<u128>) = (Vec::new(), Vec::new());
    let mut replies = 0u64;
    let mut buf = [0u8; 512];
    while watch.running() {
        let tick = Instant::now();
        if socket.is_none() {
            match connect_udp(addr) {
                Ok(s) => {
                    let local = s.local_addr().map(|a| a.to_string()).unwrap_or_default();
                    watch.event("connected", &local);
                    socket = Some(s);
                }
                Err(e) => watch.event("error", &format!("connect: {e}")),
            }
        }
        if let Some(s) = &socket {
            let exchanged = s.send(b"ping").and_then(|_| s.recv(&mut buf));
            match exchanged {
                Ok(len) => {
                    replies += 1;
                    let text = String::from_utf8_lossy(&buf[..len]);
                    let name = text
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    if order.last() != Some(&name) {
                        watch.event("reply", &name);
                        order.push(name);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => {
                    // A destroyed socket is also disconnected: `send` fails with EDESTADDRREQ
                    // first, leaving ECONNABORTED pending in SO_ERROR; a `recv` returns it.
                    let pending = s.take_error().ok().flatten();
                    if [Some(&e), pending.as_ref()]
                        .into_iter()
                        .flatten()
                        .any(aborted)
                    {
                        destroyed.push(watch.ms());
                        let pending = pending.map(|p| format!(" (pending: {p})"));
                        watch.event("destroyed", &format!("{e}{}", pending.unwrap_or_default()));
                    } else {
                        watch.event("error", &e.to_string());
                    }
                    socket = None;
                }
            }
        }
        std::thread::sleep(UDP_TICK.saturating_sub(tick.elapsed()));
    }
    let destroyed: Vec<String> = destroyed.iter().map(u128::to_string).collect();
    println!(
        "summary order={} replies={replies} destroyed={}",
        order.join(","),
        destroyed.join(",")
    );
    0
}

fn aborted(error: &std::io::Error) -> bool {
    error.raw_os_error() == Some(nix::errno::Errno::ECONNABORTED as i32)
}

fn connect_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let bind: SocketAddr = if addr.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = UdpSocket::bind(bind)?;
    socket.connect(addr)?;
    socket.set_read_timeout(Some(UDP_TICK))?;
    Ok(socket)
}

fn tcp_hold(watch: &Watch, addr: SocketAddr) -> i32 {
    let result = (|| -> std::io::Result<u64> {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        let mut line = String::new();
        reader.read_line(&mut line)?;
        watch.event("connected", line.trim());
        let mut echoes = 0;
        while watch.running() {
            writer.write_all(b"ping\n")?;
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            if line.trim() != "ping" {
                return Err(std::io::Error::other(format!("echoed {line:?}")));
            }
            echoes += 1;
            if echoes % 10 == 0 {
                watch.event("echoes", &echoes.to_string());
            }
            std::thread::sleep(TCP_TICK);
        }
        Ok(echoes)
    })();
    match result {
        Ok(echoes) => {
            println!("summary echoes={echoes}");
            0
        }
        Err(e) => {
            let kind = if aborted(&e) { "destroyed" } else { "error" };
            watch.event(kind, &e.to_string());
            1
        }
    }
}
