//! HTTP load on `/state/value`: a keep-alive GET client (ureq) and paced clients.
//!
//! Keep-alive so a sample is the server's answer time, not a TCP handshake.

use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One keep-alive client (a ureq agent keeps the connection between requests).
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the server at `addr` (`host:port`).
    pub fn new(addr: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        Client {
            base: format!("http://{addr}"),
            agent,
        }
    }

    /// GETs `path`, returning the status (the body is read, so the connection is reused).
    pub fn get(&mut self, path: &str) -> Result<u16> {
        let mut response = self.agent.get(&format!("{}{path}", self.base)).call()?;
        let status = response.status().as_u16();
        response.body_mut().read_to_vec()?;
        Ok(status)
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
    use std::io::{Read, Write};
    use std::net::TcpListener;

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
