//! A name server stub for benchmarks: answers every UDP query at once with NXDOMAIN.
//!
//! postamt checks SPF, DKIM and DMARC of incoming mail, and a production server resolves
//! through a local caching resolver that answers repeated lookups from memory. This stub stands
//! in for that resolver on loopback, so that the benchmark neither waits for timeouts nor
//! sends queries off the machine.

use std::net::SocketAddr;

use tokio::net::UdpSocket;

use crate::{BenchError, Result};

/// The NXDOMAIN answer to `query`, with its question echoed; `None` for anything that is not
/// a standard query with exactly one well-formed question.
pub fn nxdomain(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([query[2], query[3]]);
    let qdcount = u16::from_be_bytes([query[4], query[5]]);
    let opcode = (flags >> 11) & 0xf;
    if flags & 0x8000 != 0 || opcode != 0 || qdcount != 1 {
        return None;
    }
    // The question: labels up to the root label, then type and class.
    let mut i = 12;
    loop {
        let len = usize::from(*query.get(i)?);
        if len == 0 {
            i += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        i += 1 + len;
    }
    let end = i + 4;
    if query.len() < end {
        return None;
    }
    let rd = flags & 0x0100;
    // QR, AA, RD as asked, RA, RCODE 3 (NXDOMAIN).
    let answer_flags: u16 = 0x8000 | 0x0400 | rd | 0x0080 | 3;
    let mut out = Vec::with_capacity(end);
    out.extend_from_slice(&query[0..2]);
    out.extend_from_slice(&answer_flags.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&query[12..end]);
    Some(out)
}

/// Serves until the process ends.
pub async fn serve(listen: SocketAddr) -> Result<()> {
    let err = |source| BenchError::Io { addr: listen, source };
    let socket = UdpSocket::bind(listen).await.map_err(err)?;
    eprintln!("postamt-bench: answering DNS queries on {listen} with NXDOMAIN");
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = socket.recv_from(&mut buf).await.map_err(err)?;
        if let Some(reply) = nxdomain(&buf[..n]) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_a_query_with_nxdomain() {
        // ID 0x1234, RD, one question: example.org IN TXT, plus an EDNS OPT record.
        let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        query.extend_from_slice(b"\x07example\x03org\x00\x00\x10\x00\x01");
        query.extend_from_slice(&[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
        let reply = nxdomain(&query).expect("reply");
        assert_eq!(&reply[..12], &[0x12, 0x34, 0x85, 0x83, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&reply[12..], b"\x07example\x03org\x00\x00\x10\x00\x01");
        assert!(nxdomain(&reply).is_none(), "answers are not answered");
        assert!(nxdomain(&query[..20]).is_none(), "truncated question");
    }
}
