//! `lbprobe`: one client operation against an address, as a test needs to observe it.
//!
//! ```text
//! lbprobe [--cgroup DIR] tcp ADDR           connect, read the server's reply, print "<reply> <peer>"
//! lbprobe [--cgroup DIR] udp ADDR           unconnected sendto/recvfrom, print "<reply> <source>"
//! lbprobe [--cgroup DIR] udp-connected ADDR connect, send, recv, print "<reply> <peer>"
//! lbprobe [--cgroup DIR] tcp-loop ADDR SECS connect repeatedly for SECS, print "<ok> <failed>"
//! ```
//! With `--cgroup`, the process first moves itself into that cgroup, so the sockets it creates
//! are subject to the socket-LB programs attached there. Errors print `error: <kind>: <msg>` and
//! exit 1.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(2);

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = ferry_tests::join_cgroup_arg(&mut args) {
        println!("error: cgroup: {e}");
        std::process::exit(1);
    }
    let (mode, addr) = match args.as_slice() {
        [mode, addr, ..] => (mode.as_str(), addr.parse::<SocketAddr>()),
        _ => {
            eprintln!("usage: lbprobe [--cgroup DIR] tcp|udp|udp-connected|tcp-loop ADDR [SECS]");
            std::process::exit(2);
        }
    };
    let addr = addr.unwrap_or_else(|e| {
        eprintln!("bad address: {e}");
        std::process::exit(2);
    });
    let result = match mode {
        "tcp" => tcp(addr),
        "udp" => udp(addr, false),
        "udp-connected" => udp(addr, true),
        "tcp-loop" => {
            let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
            Ok(tcp_loop(addr, Duration::from_secs(secs)))
        }
        _ => {
            eprintln!("unknown mode {mode}");
            std::process::exit(2);
        }
    };
    match result {
        Ok(line) => println!("{line}"),
        Err(e) => fail(&e.to_string(), &e),
    }
}

fn fail(message: &str, error: &std::io::Error) -> ! {
    println!("error: {:?}: {message}", error.kind());
    std::process::exit(1);
}

fn tcp(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    let peer = stream.peer_addr()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(format!("{} {peer}", reply.trim()))
}

fn udp(addr: SocketAddr, connected: bool) -> std::io::Result<String> {
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().unwrap_or_else(|_| unreachable!())
    } else {
        "[::]:0".parse().unwrap_or_else(|_| unreachable!())
    };
    let socket = UdpSocket::bind(bind)?;
    socket.set_read_timeout(Some(TIMEOUT))?;
    let mut buf = [0u8; 512];
    let (len, from) = if connected {
        socket.connect(addr)?;
        socket.send(b"ping")?;
        let len = socket.recv(&mut buf)?;
        (len, socket.peer_addr()?)
    } else {
        socket.send_to(b"ping", addr)?;
        socket.recv_from(&mut buf)?
    };
    Ok(format!(
        "{} {from}",
        String::from_utf8_lossy(&buf[..len]).trim()
    ))
}

/// Connects over and over for `duration`; counts what worked (a reply read) and what failed.
fn tcp_loop(addr: SocketAddr, duration: Duration) -> String {
    let started = Instant::now();
    let (mut ok, mut failed) = (0u64, 0u64);
    while started.elapsed() < duration {
        match tcp(addr) {
            Ok(reply) if !reply.is_empty() => ok += 1,
            _ => failed += 1,
        }
        let _ = std::io::stdout().flush();
        std::thread::sleep(Duration::from_millis(2));
    }
    format!("{ok} {failed}")
}
