//! Shared by the DNS suites: `ferry run` with DNS on a free loopback port, `dig` with its output
//! parsed into sections, raw DNS packets over std sockets, and a fake upstream server on
//! loopback (never an address outside it).

#![allow(
    dead_code,
    reason = "each suite includes this module and uses a different part of it"
)]

use ferry_tests::{Ferry, free_port};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// `ferry run --manifests DIR --no-lb --no-ingress --dns-listen 127.0.0.1:<free> EXTRA...`,
/// ready; with the DNS port.
pub fn start(dir: &Path, extra: &[&str]) -> (Ferry, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let dir = dir.to_str().unwrap();
    let mut args = vec![
        "--manifests",
        dir,
        "--no-lb",
        "--no-ingress",
        "--dns-listen",
        &listen,
    ];
    args.extend(extra);
    let mut ferry = Ferry::start(&args).unwrap();
    ferry.wait_ready(Duration::from_secs(30)).unwrap();
    (ferry, port)
}

/// One `dig` answer, sections as whitespace-normalized record lines.
#[derive(Debug, Default)]
pub struct Dig {
    pub status: String,
    pub flags: Vec<String>,
    pub answer: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
    pub raw: String,
}

impl Dig {
    /// The rdata (last field) of each answer record.
    pub fn data(&self) -> Vec<String> {
        self.answer
            .iter()
            .map(|r| r.splitn(5, ' ').nth(4).unwrap_or_default().to_string())
            .collect()
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// NOERROR or NXDOMAIN with no answer and exactly the zone's SOA in authority.
    pub fn assert_negative(&self, status: &str) {
        assert_eq!(self.status, status, "{}", self.raw);
        assert!(self.answer.is_empty(), "{}", self.raw);
        assert_eq!(self.authority.len(), 1, "{}", self.raw);
        assert!(
            self.authority[0].starts_with("cluster.local. 30 IN SOA ns.dns.cluster.local."),
            "{}",
            self.raw
        );
    }
}

/// `dig @127.0.0.1 -p PORT ARGS...` (one try, 3 s), parsed.
pub fn dig(port: u16, args: &[&str]) -> Dig {
    dig_at("127.0.0.1", port, args)
}

/// `dig @SERVER -p PORT ARGS...` (one try, 3 s), parsed.
pub fn dig_at(server: &str, port: u16, args: &[&str]) -> Dig {
    let output = Command::new("dig")
        .arg(format!("@{server}"))
        .args(["-p", &port.to_string(), "+time=3", "+tries=1"])
        .args(args)
        .output()
        .expect("running dig");
    parse_dig(&String::from_utf8_lossy(&output.stdout))
}

/// `dig`'s output, parsed.
pub fn parse_dig(raw: &str) -> Dig {
    let mut dig = Dig {
        raw: raw.to_string(),
        ..Dig::default()
    };
    let mut section: Option<&mut Vec<String>> = None;
    for line in raw.lines() {
        if let Some(rest) = line.split("status: ").nth(1) {
            dig.status = rest.split(',').next().unwrap_or_default().to_string();
        } else if let Some(rest) = line.strip_prefix(";; flags: ") {
            let flags = rest.split(';').next().unwrap_or_default();
            dig.flags = flags.split_whitespace().map(str::to_string).collect();
        }
        if line.starts_with(";; ANSWER SECTION") {
            section = Some(&mut dig.answer);
        } else if line.starts_with(";; AUTHORITY SECTION") {
            section = Some(&mut dig.authority);
        } else if line.starts_with(";; ADDITIONAL SECTION") {
            section = Some(&mut dig.additional);
        } else if line.trim().is_empty() || line.starts_with(';') {
            section = None;
        } else if let Some(records) = section.as_mut() {
            records.push(line.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    dig
}

/// A query for `name` (`qtype` as a number), with an EDNS OPT record when `edns`.
pub fn query_packet(id: u16, name: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut packet = Vec::new();
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    for label in name.trim_end_matches('.').split('.') {
        packet.push(u8::try_from(label.len()).unwrap());
        packet.extend_from_slice(label.as_bytes());
    }
    packet.push(0);
    packet.extend_from_slice(&qtype.to_be_bytes());
    packet.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        packet.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    packet
}

/// Sends `packet` over UDP and returns the response, if one comes within `wait`.
pub fn udp_exchange(port: u16, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.send_to(packet, ("127.0.0.1", port)).unwrap();
    let mut buffer = [0; 65535];
    let len = socket.recv(&mut buffer).ok()?;
    Some(buffer[..len].to_vec())
}

/// The rcode and the answer count of a response.
pub fn rcode_and_answers(response: &[u8]) -> (u8, u16) {
    (
        response[3] & 0x0f,
        u16::from_be_bytes([response[6], response[7]]),
    )
}

/// A DNS server on 127.0.0.1 (UDP and TCP, one port) with fixed answers, counting queries:
/// * `slow.example`: never answers;
/// * `missing.example`: NXDOMAIN with a SOA (negative TTL 60);
/// * `big.example`: TC over UDP, 40 A records over TCP;
/// * any other name: `A 192.0.2.10`, TTL 300.
#[derive(Debug)]
pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<HashMap<(String, &'static str), usize>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Upstream {
    pub fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap())
    }

    /// The same server on `addr` (in the network namespace of the calling thread); port 0 is
    /// a [`free_port`], free for both transports.
    pub fn start_on(mut addr: SocketAddr) -> Self {
        if addr.port() == 0 {
            addr.set_port(free_port());
        }
        let udp = UdpSocket::bind(addr).unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = TcpListener::bind(addr).unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen_udp, stop_udp) = (seen.clone(), stop.clone());
        let udp_thread = std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while !stop_udp.load(Ordering::Relaxed) {
                let Ok((len, src)) = udp.recv_from(&mut buffer) else {
                    continue;
                };
                if let Some(response) = respond(&buffer[..len], "udp", &seen_udp) {
                    let _ = udp.send_to(&response, src);
                }
            }
        });
        let (seen_tcp, stop_tcp) = (seen.clone(), stop.clone());
        let tcp_thread = std::thread::spawn(move || {
            while !stop_tcp.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let mut len = [0; 2];
                if stream.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut query = vec![0; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut query).is_err() {
                    continue;
                }
                if let Some(response) = respond(&query, "tcp", &seen_tcp) {
                    let len = u16::try_from(response.len()).unwrap().to_be_bytes();
                    let _ = stream.write_all(&[&len[..], &response].concat());
                }
            }
        });
        Self {
            addr,
            seen,
            stop,
            threads: vec![udp_thread, tcp_thread],
        }
    }

    /// Queries received for `name` (lowercase, no trailing dot) over `transport`.
    pub fn queries(&self, name: &str, transport: &'static str) -> usize {
        let seen = self.seen.lock().unwrap();
        seen.get(&(name.to_string(), transport))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

type Seen = Mutex<HashMap<(String, &'static str), usize>>;

fn respond(query: &[u8], transport: &'static str, seen: &Seen) -> Option<Vec<u8>> {
    // The question: labels from offset 12, then type and class.
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let question_end = at + 4;
    let question = query.get(12..question_end)?;
    let name = labels.join(".");
    *seen
        .lock()
        .unwrap()
        .entry((name.clone(), transport))
        .or_default() += 1;
    let (mut flags, mut rcode) = (0x8180u16, 0u16);
    let mut answers: Vec<Vec<u8>> = Vec::new();
    let mut authority: Vec<Vec<u8>> = Vec::new();
    match name.as_str() {
        "slow.example" => return None,
        "missing.example" => {
            rcode = 3;
            // SOA: root mname and rname, serial, refresh, retry, expire, minimum 60.
            let mut rdata = vec![0, 0];
            for value in [1u32, 7200, 1800, 86400, 60] {
                rdata.extend_from_slice(&value.to_be_bytes());
            }
            authority.push(record(6, 300, &rdata));
        }
        "big.example" if transport == "udp" => flags |= 0x0200,
        "big.example" => {
            for i in 1..=40u8 {
                answers.push(record(1, 300, &[192, 0, 2, i]));
            }
        }
        _ => answers.push(record(1, 300, &[192, 0, 2, 10])),
    }
    let mut response = Vec::new();
    response.extend_from_slice(&query[..2]);
    response.extend_from_slice(&(flags | rcode).to_be_bytes());
    for count in [1, answers.len(), authority.len(), 0] {
        response.extend_from_slice(&u16::try_from(count).unwrap().to_be_bytes());
    }
    response.extend_from_slice(question);
    for r in answers.iter().chain(&authority) {
        response.extend_from_slice(r);
    }
    Some(response)
}

/// A record owned by the question's name (compression pointer to offset 12).
fn record(rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
    let mut r = vec![0xc0, 12];
    r.extend_from_slice(&rtype.to_be_bytes());
    r.extend_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&ttl.to_be_bytes());
    r.extend_from_slice(&u16::try_from(rdata.len()).unwrap().to_be_bytes());
    r.extend_from_slice(rdata);
    r
}
