//! A small authoritative DNS server for tests: UDP and TCP on one loopback port, answering A,
//! AAAA, MX (including null MX) and TXT for the names it was given, NXDOMAIN for every other
//! name, NOERROR with no answer for a known name without records of the asked type. Records
//! can be added while it runs. Answers have TTL 0 and negative answers carry an SOA with
//! minimum 0, so a resolver caches nothing.
//!
//! ```ignore
//! let dns = DnsServer::start(Records::new().mx("b.test", 10, "mx.b.test").a("mx.b.test", LOCALHOST));
//! dns.add_txt("b.test", "v=spf1 -all");
//! let server = Server::start_with(&dns.config());   // [dns] resolver = "127.0.0.1:PORT"
//! ```

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

pub const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The zone data: records by lower-case name without the trailing dot.
#[derive(Debug, Clone, Default)]
pub struct Records {
    names: HashMap<String, Vec<RData>>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn name(s: &str) -> Name {
    if s.is_empty() || s == "." {
        return Name::root();
    }
    let mut n = Name::from_ascii(s).unwrap_or_else(|e| panic!("bad DNS name {s:?}: {e}"));
    n.set_fqdn(true);
    n
}

impl Records {
    pub fn new() -> Records {
        Records::default()
    }

    fn add(&mut self, owner: &str, data: RData) {
        self.names.entry(key(owner)).or_default().push(data);
    }

    pub fn a(mut self, owner: &str, ip: Ipv4Addr) -> Records {
        self.add(owner, RData::A(A(ip)));
        self
    }

    pub fn aaaa(mut self, owner: &str, ip: Ipv6Addr) -> Records {
        self.add(owner, RData::AAAA(AAAA(ip)));
        self
    }

    pub fn mx(mut self, domain: &str, preference: u16, exchange: &str) -> Records {
        self.add(domain, RData::MX(MX::new(preference, name(exchange))));
        self
    }

    /// RFC 7505: one MX with preference 0 and the root as exchange.
    pub fn null_mx(self, domain: &str) -> Records {
        self.mx(domain, 0, ".")
    }

    /// A TXT record; values longer than 255 octets are split into several strings, as DKIM
    /// keys are (RFC 6376 3.6.2.2: the strings are concatenated).
    pub fn txt(mut self, owner: &str, value: &str) -> Records {
        let chunks: Vec<String> = value
            .as_bytes()
            .chunks(255)
            .map(|c| String::from_utf8(c.to_vec()).expect("TXT test values are ASCII"))
            .collect();
        self.add(owner, RData::TXT(TXT::new(if chunks.is_empty() { vec![String::new()] } else { chunks })));
        self
    }

    /// Makes a name exist (NOERROR, no records) without giving it records.
    pub fn exists(mut self, owner: &str) -> Records {
        self.names.entry(key(owner)).or_default();
        self
    }

    fn answer(&self, qname: &str, qtype: RecordType) -> Option<Vec<RData>> {
        let records = self.names.get(&key(qname))?;
        Some(records.iter().filter(|r| r.record_type() == qtype).cloned().collect())
    }
}

/// The running server; stops when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    records: Arc<Mutex<Records>>,
    queries: Arc<Mutex<Vec<(String, RecordType)>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl DnsServer {
    /// Starts serving `records` on 127.0.0.1 (a free port, UDP and TCP).
    pub fn start(records: Records) -> DnsServer {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().expect("udp addr");
        let records = Arc::new(Mutex::new(records));
        let queries = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        udp.set_read_timeout(Some(Duration::from_millis(100))).expect("udp timeout");
        tcp.set_nonblocking(true).expect("tcp nonblocking");

        let mut threads = Vec::new();
        {
            let (records, queries, stop) = (records.clone(), queries.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, peer)) = udp.recv_from(&mut buf) else { continue };
                    if let Some(reply) = respond(&buf[..n], &records, &queries, true) {
                        let _ = udp.send_to(&reply, peer);
                    }
                }
            }));
        }
        {
            let (records, queries, stop) = (records.clone(), queries.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match tcp.accept() {
                        Ok((stream, _)) => {
                            let (records, queries) = (records.clone(), queries.clone());
                            std::thread::spawn(move || serve_tcp(stream, &records, &queries));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }));
        }
        DnsServer { addr, records, queries, stop, threads }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `[dns]` table that points postamt at this server.
    pub fn config(&self) -> String {
        format!("[dns]\nresolver = \"{}\"\n", self.addr)
    }

    fn update(&self, f: impl FnOnce(Records) -> Records) {
        let mut records = self.records.lock().unwrap();
        let current = std::mem::take(&mut *records);
        *records = f(current);
    }

    pub fn add_a(&self, owner: &str, ip: Ipv4Addr) {
        self.update(|r| r.a(owner, ip));
    }

    pub fn add_aaaa(&self, owner: &str, ip: Ipv6Addr) {
        self.update(|r| r.aaaa(owner, ip));
    }

    pub fn add_mx(&self, domain: &str, preference: u16, exchange: &str) {
        self.update(|r| r.mx(domain, preference, exchange));
    }

    pub fn add_null_mx(&self, domain: &str) {
        self.update(|r| r.null_mx(domain));
    }

    pub fn add_txt(&self, owner: &str, value: &str) {
        self.update(|r| r.txt(owner, value));
    }

    /// Removes every record of a name (it then answers NXDOMAIN).
    pub fn remove(&self, owner: &str) {
        self.records.lock().unwrap().names.remove(&key(owner));
    }

    /// The questions asked so far (name lower-case without the trailing dot, type).
    pub fn queries(&self) -> Vec<(String, RecordType)> {
        self.queries.lock().unwrap().clone()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A UDP socket and a TCP listener on the same free loopback port.
fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
            return (udp, tcp);
        }
    }
    panic!("no free port for UDP and TCP");
}

/// DNS over TCP (RFC 1035 4.2.2): each message with a two-octet length.
fn serve_tcp(
    mut stream: std::net::TcpStream,
    records: &Mutex<Records>,
    queries: &Mutex<Vec<(String, RecordType)>>,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut msg).is_err() {
            return;
        }
        let Some(reply) = respond(&msg, records, queries, false) else { return };
        let Ok(n) = u16::try_from(reply.len()) else { return };
        if stream.write_all(&n.to_be_bytes()).and_then(|_| stream.write_all(&reply)).is_err() {
            return;
        }
    }
}

/// The answer to one query message; `None` for something that is not a query.
fn respond(
    bytes: &[u8],
    records: &Mutex<Records>,
    queries: &Mutex<Vec<(String, RecordType)>>,
    udp: bool,
) -> Option<Vec<u8>> {
    let request = Message::from_vec(bytes).ok()?;
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut response = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    let Some(query) = request.queries.first().cloned() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response.to_vec().ok();
    };
    let qname = query.name().to_ascii();
    let qtype = query.query_type();
    queries.lock().unwrap().push((key(&qname), qtype));
    response.add_query(query.clone());
    let answer = records.lock().unwrap().answer(&qname, qtype);
    match answer {
        None => response.metadata.response_code = ResponseCode::NXDomain,
        Some(data) if data.is_empty() => {}
        Some(data) => {
            for rdata in data {
                response.add_answer(Record::from_rdata(query.name().clone(), 0, rdata));
            }
        }
    }
    if response.answers.is_empty() {
        // A negative answer, cacheable for 0 seconds (RFC 2308 section 5).
        let soa = SOA::new(name("ns.test"), name("hostmaster.test"), 1, 60, 60, 60, 0);
        response.add_authority(Record::from_rdata(query.name().clone(), 0, RData::SOA(soa)));
    }
    let mut max = 512;
    if let Some(edns) = &request.edns {
        max = usize::from(edns.max_payload().max(512));
        let mut ours = Edns::new();
        ours.set_max_payload(4096);
        response.set_edns(ours);
    }
    let out = response.to_vec().ok()?;
    if udp && out.len() > max {
        // Too large for UDP: the client asks again over TCP (RFC 1035 4.2.1).
        let mut truncated = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
        truncated.metadata.authoritative = true;
        truncated.metadata.truncation = true;
        truncated.metadata.recursion_available = true;
        truncated.add_query(query);
        return truncated.to_vec().ok();
    }
    Some(out)
}
