//! HTTP load on `/state/value`: a minimal keep-alive HTTP/1.1 GET client and paced clients.
//!
//! Keep-alive so a sample is the server's answer time, not a TCP handshake; hand-written so the
//! harness needs no HTTP stack of its own.

use anyhow::{anyhow, bail, Result};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Status and total length (head + body) of a complete response at the start of `buf`;
/// `None` while more bytes are needed. Only `Content-Length` bodies (what the server sends).
pub fn parse_response(buf: &[u8]) -> Result<Option<(u16, usize)>> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            bail!("response head over 64 KiB");
        }
        return Ok(None);
    };
    let head =
        std::str::from_utf8(&buf[..head_end]).map_err(|_| anyhow!("response head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .ok_or_else(|| anyhow!("response without Content-Length"))?;
    let total = head_end + 4 + length;
    Ok((buf.len() >= total).then_some((status, total)))
}

/// One keep-alive connection; reconnects when the server closes it.
pub struct Client {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    pub fn new(addr: &str) -> Client {
        Client {
            addr: addr.to_string(),
            stream: None,
            buf: Vec::with_capacity(8192),
        }
    }

    /// GETs `path`, returning the status.
    pub fn get(&mut self, path: &str) -> Result<u16> {
        match self.try_get(path) {
            Ok(s) => Ok(s),
            Err(_) => {
                // A keep-alive connection the server closed between requests: retry once fresh.
                self.stream = None;
                self.try_get(path)
            }
        }
    }

    fn try_get(&mut self, path: &str) -> Result<u16> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            self.stream = Some(s);
        }
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| anyhow!("not connected"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr);
        stream.write_all(request.as_bytes())?;
        self.buf.clear();
        let mut chunk = [0u8; 8192];
        loop {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                self.stream = None;
                bail!("connection closed mid-response");
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some((status, _)) = parse_response(&self.buf)? {
                return Ok(status);
            }
        }
    }
}

/// What the HTTP clients measured.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    pub latencies_ms: Vec<f64>,
    /// Requests that failed or answered other than 200.
    pub errors: u64,
    pub seconds: f64,
}

/// `clients` threads GETting `path` at `rate` requests/s in total (0: back to back) until
/// [`Load::finish`].
pub struct Load {
    stop: Arc<AtomicBool>,
    started: Instant,
    handles: Vec<JoinHandle<LoadOutcome>>,
}

impl Load {
    pub fn start(addr: &str, path: &str, clients: usize, rate: f64) -> Result<Load> {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = clients.max(1);
        // Each client keeps its own schedule; a late request is sent at once, not skipped.
        let interval = (rate > 0.0).then(|| Duration::from_secs_f64(clients as f64 / rate));
        let mut handles = Vec::new();
        for i in 0..clients {
            let (addr, path, stop) = (addr.to_string(), path.to_string(), stop.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("http-load-{i}"))
                    .spawn(move || client_loop(&addr, &path, interval, &stop))?,
            );
        }
        Ok(Load {
            stop,
            started: Instant::now(),
            handles,
        })
    }

    pub fn finish(self) -> LoadOutcome {
        self.stop.store(true, Ordering::SeqCst);
        let seconds = self.started.elapsed().as_secs_f64();
        let mut out = LoadOutcome {
            seconds,
            ..LoadOutcome::default()
        };
        for h in self.handles {
            match h.join() {
                Ok(o) => {
                    out.latencies_ms.extend(o.latencies_ms);
                    out.errors += o.errors;
                }
                Err(_) => out.errors += 1,
            }
        }
        out
    }
}

fn client_loop(
    addr: &str,
    path: &str,
    interval: Option<Duration>,
    stop: &AtomicBool,
) -> LoadOutcome {
    let mut client = Client::new(addr);
    let mut out = LoadOutcome::default();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(iv) = interval {
            let now = Instant::now();
            if now < next {
                std::thread::sleep(next - now);
            }
            next += iv;
        }
        let t = Instant::now();
        match client.get(path) {
            Ok(200) => out.latencies_ms.push(t.elapsed().as_secs_f64() * 1000.0),
            _ => {
                out.errors += 1;
                // Do not spin on a server that is not answering.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_complete_and_partial_responses() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(r).unwrap(), Some((200, r.len())));
        assert_eq!(parse_response(&r[..r.len() - 1]).unwrap(), None);
        assert_eq!(parse_response(b"HTTP/1.1 404 Not").unwrap(), None);
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn keep_alive_client_against_a_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            for _ in 0..2 {
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).unwrap();
                    req.extend_from_slice(&buf[..n]);
                }
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
                    .unwrap();
            }
        });
        let mut c = Client::new(&addr);
        assert_eq!(c.get("/state/value").unwrap(), 200);
        assert_eq!(c.get("/state/value").unwrap(), 200);
        server.join().unwrap();
    }
}
