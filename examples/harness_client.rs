//! The harness with a user-written client: a line-protocol server ("HELLO <name>\n" answered
//! by "hi <name>\n") and a client that checks every answer, both written against
//! `edgesim::mio`, run under the simulator for a range of seeds.
//!
//! Run it: `cargo run --example harness_client` (add `-- --buggy` to see a failure with its
//! seed, its diagnosis and the replay command).

use edgesim::harness::{Client, Harness};
use edgesim::mio::net::{TcpListener, TcpStream};
use edgesim::mio::{Events, Interest, Poll, Token};
use std::collections::BTreeMap;
use std::io::{self, ErrorKind, Read, Write};

const LISTENER: Token = Token(0);
/// Requests each client sends.
const REQUESTS: usize = 5;

/// The server: answers each complete line. With `buggy`, it reads once per event and so
/// loses track of lines that arrive together with others.
fn greeter(mut listener: TcpListener, buggy: bool) -> io::Result<()> {
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(64);
    let mut conns: BTreeMap<Token, (TcpStream, Vec<u8>, Vec<u8>)> = BTreeMap::new();
    let mut next = 1;
    loop {
        match poll.poll(&mut events, None) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => other?,
        }
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let token = Token(next);
                            next += 1;
                            let interest = Interest::READABLE | Interest::WRITABLE;
                            poll.registry().register(&mut stream, token, interest)?;
                            conns.insert(token, (stream, Vec::new(), Vec::new()));
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let Some((stream, input, output)) = conns.get_mut(&event.token()) else {
                continue;
            };
            let mut closed = false;
            let mut buf = [0u8; 16];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => input.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
                if buggy {
                    break;
                }
            }
            while let Some(end) = input.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = input.drain(..=end).collect();
                let name = line.strip_prefix(b"HELLO ").unwrap_or(b"?\n");
                output.extend_from_slice(b"hi ");
                output.extend_from_slice(name);
            }
            while !output.is_empty() {
                match stream.write(output) {
                    Ok(n) => {
                        output.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            if closed && output.is_empty() {
                if let Some((mut stream, _, _)) = conns.remove(&event.token()) {
                    let _ = poll.registry().deregister(&mut stream);
                }
            }
        }
    }
}

/// The client: sends all its requests at once (so they may arrive in one segment), then
/// checks that every answer comes back, in order.
fn greet(client: &Client) -> Result<(), String> {
    let io = |what: &str, e: io::Error| format!("{what}: {e}");
    let mut poll = Poll::new().map_err(|e| io("poll", e))?;
    let mut stream = TcpStream::connect(client.addr()).map_err(|e| io("connect", e))?;
    let interest = Interest::READABLE | Interest::WRITABLE;
    poll.registry()
        .register(&mut stream, Token(0), interest)
        .map_err(|e| io("register", e))?;
    let mut request = Vec::new();
    let mut expected = Vec::new();
    for i in 0..REQUESTS {
        // The names depend on the client's seed, so a replay sends the same bytes.
        let name = format!("c{}-{}", client.index(), (client.seed() >> (i * 8)) as u8);
        request.extend_from_slice(format!("HELLO {name}\n").as_bytes());
        expected.extend_from_slice(format!("hi {name}\n").as_bytes());
    }
    let mut sent = 0;
    let mut received = Vec::new();
    let mut events = Events::with_capacity(4);
    let mut buf = [0u8; 256];
    while received.len() < expected.len() {
        match poll.poll(&mut events, None) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => other.map_err(|e| io("poll", e))?,
        }
        match stream.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => return Err(io("connect", e)),
        }
        while sent < request.len() {
            match stream.write(&request[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // Still connecting: the writable event will come.
                Err(e) if e.kind() == ErrorKind::NotConnected => break,
                Err(e) => return Err(io("write", e)),
            }
        }
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return Err(format!("end of file after {} bytes", received.len())),
                Ok(n) => {
                    received.extend_from_slice(&buf[..n]);
                    client.progress(n as u64);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::NotConnected => break,
                Err(e) => return Err(io("read", e)),
            }
        }
        if !expected.starts_with(&received[..received.len().min(expected.len())]) {
            return Err(format!(
                "answer {:?} does not match {:?}",
                String::from_utf8_lossy(&received),
                String::from_utf8_lossy(&expected)
            ));
        }
    }
    Ok(())
}

fn main() {
    let buggy = std::env::args().any(|a| a == "--buggy");
    let harness = Harness::new(move |listener| greeter(listener, buggy))
        .no_standard_clients()
        .client(3, greet);
    let explored = harness.explore(0..200);
    match &explored.first_failure {
        None => println!(
            "passed {} seeds in {:.1} s",
            explored.explored, explored.secs
        ),
        Some(failure) => {
            println!("{}", failure.summary());
            for line in &failure.diagnosis {
                println!("  {line}");
            }
            println!("replay: {}", edgesim::harness::replay_command(failure.seed));
            std::process::exit(1);
        }
    }
}
