//! Readiness probes. A listening socket is not a ready Kafka broker: Apache Kafka accepts
//! connections before it has joined its quorum and registered itself, so "ready" means a Metadata
//! request answers and lists the broker. The request is written by hand (Metadata v4, the oldest
//! version Kafka 4 still serves) so this crate needs no Kafka client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Whether something accepts TCP connections at one of the addresses of `bootstrap`
/// (a comma-separated `host:port` list, as `bootstrap.servers` takes).
pub fn is_reachable(bootstrap: &str, timeout: Duration) -> bool {
    bootstrap
        .split(',')
        .filter_map(|hp| hp.trim().to_socket_addrs().ok())
        .flatten()
        .any(|addr| TcpStream::connect_timeout(&addr, timeout).is_ok())
}

/// The node ids a broker at `addr` lists in its Metadata answer, or `None` if it does not answer
/// a Metadata request within `timeout`.
pub fn metadata_brokers(addr: SocketAddr, timeout: Duration) -> Option<Vec<i32>> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    stream.write_all(&metadata_request(7)).ok()?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let size = usize::try_from(i32::from_be_bytes(size)).ok()?;
    if size > 16 << 20 {
        return None;
    }
    let mut body = vec![0u8; size];
    stream.read_exact(&mut body).ok()?;
    parse_metadata_brokers(&body, 7)
}

/// Metadata v4 with request header v1: all topics (null array), no auto-creation.
fn metadata_request(correlation_id: i32) -> Vec<u8> {
    let client_id = b"ks-broker-probe";
    let mut req = Vec::with_capacity(40);
    req.extend_from_slice(&3i16.to_be_bytes()); // api key: Metadata
    req.extend_from_slice(&4i16.to_be_bytes()); // api version
    req.extend_from_slice(&correlation_id.to_be_bytes());
    req.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    req.extend_from_slice(client_id);
    req.extend_from_slice(&(-1i32).to_be_bytes()); // topics: null = all
    req.push(0); // allow_auto_topic_creation
    let mut framed = (req.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&req);
    framed
}

/// Reads the broker list of a Metadata v4 response (after its size prefix).
fn parse_metadata_brokers(body: &[u8], correlation_id: i32) -> Option<Vec<i32>> {
    let mut r = Reader { buf: body, at: 0 };
    if r.i32()? != correlation_id {
        return None;
    }
    let _throttle_ms = r.i32()?;
    let count = r.i32()?;
    let mut ids = Vec::new();
    for _ in 0..count.max(0) {
        ids.push(r.i32()?); // node_id
        r.string()?; // host
        r.i32()?; // port
        r.string()?; // rack (nullable)
    }
    Some(ids)
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// A (nullable) string: int16 length, -1 for null.
    fn string(&mut self) -> Option<()> {
        let len = i16::from_be_bytes(self.take(2)?.try_into().ok()?);
        if len > 0 {
            self.take(len as usize)?;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_broker_list() {
        let mut b = Vec::new();
        b.extend_from_slice(&7i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&2i32.to_be_bytes());
        for (id, host) in [(1i32, "a"), (3, "host-b")] {
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&(host.len() as i16).to_be_bytes());
            b.extend_from_slice(host.as_bytes());
            b.extend_from_slice(&9092i32.to_be_bytes());
            b.extend_from_slice(&(-1i16).to_be_bytes());
        }
        assert_eq!(parse_metadata_brokers(&b, 7), Some(vec![1, 3]));
        assert_eq!(parse_metadata_brokers(&b, 8), None);
        assert_eq!(parse_metadata_brokers(&b[..b.len() - 3], 7), None);
    }

    #[test]
    fn the_request_is_framed() {
        let req = metadata_request(7);
        let size = i32::from_be_bytes(req[..4].try_into().unwrap()) as usize;
        assert_eq!(size, req.len() - 4);
        assert_eq!(&req[4..8], &[0, 3, 0, 4]);
    }
}
