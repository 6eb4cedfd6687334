//! One client connection, plain TCP or TLS, with line-oriented buffered reading.
//!
//! Certificates are not verified: benchmarks run against servers on loopback with
//! self-signed certificates, and what is measured is the server's work, not the client's trust.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

use crate::{BenchError, Result, Target};

/// How long any single read or write may take before the run is declared stuck.
pub const IO_TIMEOUT: Duration = Duration::from_secs(120);

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A connection with a read buffer that is dropped whenever it runs empty, so that thousands
/// of idle connections cost the load generator little.
pub struct Conn {
    stream: Stream,
    addr: SocketAddr,
    buf: Vec<u8>,
    pos: usize,
}

impl Conn {
    /// Connects to `target` (from `local` when given, to spread many connections over several
    /// loopback source addresses), with the TLS handshake when `target.tls`.
    pub async fn connect(target: Target, local: Option<IpAddr>) -> Result<Conn> {
        let addr = target.addr;
        let err = |source| BenchError::Io { addr, source };
        let connect = async {
            let socket =
                if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(err)?;
            if let Some(ip) = local {
                socket.bind(SocketAddr::new(ip, 0)).map_err(err)?;
            }
            let tcp = socket.connect(addr).await.map_err(err)?;
            tcp.set_nodelay(true).map_err(err)?;
            let stream = if target.tls {
                let connector = tokio_rustls::TlsConnector::from(tls_config());
                let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                Stream::Tls(Box::new(connector.connect(name, tcp).await.map_err(err)?))
            } else {
                Stream::Plain(tcp)
            };
            Ok::<_, BenchError>(stream)
        };
        let stream = tokio::time::timeout(IO_TIMEOUT, connect)
            .await
            .map_err(|_| BenchError::Timeout(format!("connecting to {addr}")))??;
        Ok(Conn { stream, addr, buf: Vec::new(), pos: 0 })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn io_err(&self, source: io::Error) -> BenchError {
        BenchError::Io { addr: self.addr, source }
    }

    /// Reads more bytes into the buffer; an error at end of stream.
    async fn fill(&mut self) -> Result<()> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 && self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(READ_CHUNK);
        let read = tokio::time::timeout(IO_TIMEOUT, self.stream.read_buf(&mut self.buf))
            .await
            .map_err(|_| BenchError::Timeout(format!("reading from {}", self.addr)))?;
        match read {
            Ok(0) => Err(self.io_err(io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => Ok(()),
            Err(e) => Err(self.io_err(e)),
        }
    }

    /// One line including its CRLF (or LF).
    pub async fn read_line(&mut self) -> Result<Vec<u8>> {
        let mut scanned = 0;
        loop {
            let pending = &self.buf[self.pos..];
            if let Some(i) = pending[scanned..].iter().position(|&b| b == b'\n') {
                let end = self.pos + scanned + i + 1;
                let line = self.buf[self.pos..end].to_vec();
                self.consume(end - self.pos);
                return Ok(line);
            }
            // `fill` may move the pending bytes to the front; `scanned` counts from their start.
            scanned = pending.len();
            self.fill().await?;
        }
    }

    /// Reads and discards exactly `n` bytes (a literal or message body being counted).
    pub async fn skip(&mut self, mut n: usize) -> Result<()> {
        loop {
            let available = self.buf.len() - self.pos;
            let take = available.min(n);
            self.consume(take);
            n -= take;
            if n == 0 {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    /// Reads exactly `n` bytes.
    pub async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if self.pos == self.buf.len() {
                self.fill().await?;
            }
            let take = (self.buf.len() - self.pos).min(n - out.len());
            out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            self.consume(take);
        }
        Ok(out)
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Gives the read buffer's memory back when nothing is pending (before holding a
    /// connection idle for long).
    pub fn shrink(&mut self) {
        if self.pos == self.buf.len() {
            self.buf = Vec::new();
            self.pos = 0;
        }
    }

    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(IO_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.io_err(e)),
            Err(_) => Err(BenchError::Timeout(format!("writing to {}", self.addr))),
        }
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Accepts whatever certificate the server shows (see the module docs).
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn lines_literals_and_skips() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            s.write_all(b"* OK hi\r\nabc").await.expect("write");
            tokio::time::sleep(Duration::from_millis(20)).await;
            s.write_all(b"def\r\n0123456789tail\r\n").await.expect("write");
            s.write_all(&vec![b'x'; 100_000]).await.expect("write");
            s.write_all(b"\r\nend\n").await.expect("write");
        });
        let mut c = Conn::connect(Target { addr, tls: false }, None).await.expect("connect");
        assert_eq!(c.read_line().await.expect("line"), b"* OK hi\r\n");
        assert_eq!(c.read_line().await.expect("line"), b"abcdef\r\n");
        assert_eq!(c.read_exact(4).await.expect("exact"), b"0123");
        c.skip(6).await.expect("skip");
        assert_eq!(c.read_line().await.expect("line"), b"tail\r\n");
        c.skip(100_000).await.expect("skip big");
        assert_eq!(c.read_line().await.expect("line"), b"\r\n");
        assert_eq!(c.read_line().await.expect("line"), b"end\n");
        c.shrink();
        assert!(matches!(c.read_line().await, Err(BenchError::Io { .. })));
        server.await.expect("server");
    }
}
