//! A tiny HTTP backend for the demo: answers every request with its own name.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

/// Serves on an already bound listener (for instance one bound inside another network
/// namespace) until the process ends.
pub fn serve_on(listener: TcpListener, name: &str) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let name = name.to_string();
        std::thread::spawn(move || {
            let _ = answer(stream, &name);
        });
    }
}

fn answer(stream: TcpStream, name: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    // Read the request head; the body (if any) is ignored.
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let body = format!("hello from {name}\n");
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
