//! A connection that is either plain TCP or TLS, so protocol code is written
//! once for both, and can switch from plain to TLS in place (STARTTLS, STLS).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use rustls::{CipherSuite, ProtocolVersion};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A server-side client connection, plain or TLS.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    // Boxed: the TLS state is large and would bloat every plain connection.
    Tls(Box<TlsStream<TcpStream>>),
}

/// What was negotiated on a TLS connection, e.g. for `Received` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    pub version: ProtocolVersion,
    pub cipher_suite: CipherSuite,
    /// Server name the client asked for (SNI), if any.
    pub server_name: Option<String>,
}

impl fmt::Display for TlsInfo {
    /// Formats as `TLSv1.3 TLS13_AES_256_GCM_SHA384`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            ProtocolVersion::TLSv1_2 => f.write_str("TLSv1.2")?,
            ProtocolVersion::TLSv1_3 => f.write_str("TLSv1.3")?,
            other => write!(f, "{other:?}")?,
        }
        write!(f, " {:?}", self.cipher_suite)
    }
}

impl Stream {
    /// True once TLS is active (implicit TLS or after [`Stream::start_tls`]).
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The underlying TCP connection.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    /// Address of the client.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    /// Local address the client connected to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().local_addr()
    }

    /// Negotiated TLS parameters; `None` on a plain connection.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        let Stream::Tls(s) = self else { return None };
        let conn = s.get_ref().1;
        Some(TlsInfo {
            version: conn.protocol_version()?,
            cipher_suite: conn.negotiated_cipher_suite()?.suite(),
            server_name: conn.server_name().map(str::to_owned),
        })
    }

    /// Waits until a read would find input (or end of stream), so that a waiting session
    /// needs no read buffer yet: the socket's readiness, unless rustls already holds
    /// decrypted input or the peer's close_notify (it no longer `wants_read`), which no
    /// socket readiness would announce: then at once. (tokio-rustls reads from the socket
    /// exactly when rustls wants to read.) Cancel-safe.
    pub async fn read_ready(&self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.readable().await,
            Stream::Tls(s) => {
                let (tcp, conn) = s.get_ref();
                if conn.wants_read() { tcp.readable().await } else { Ok(()) }
            }
        }
    }

    /// Performs the server TLS handshake on a plain connection, after the
    /// protocol's STARTTLS/STLS command was answered.
    ///
    /// **The caller must discard any plaintext it has already read past the
    /// STARTTLS command line** (for example whatever is left in a `BufReader`
    /// around this stream) before calling this. Bytes that a man in the middle
    /// pipelined after the command would otherwise be executed as if they had
    /// arrived over TLS (the CVE-2011-0411 class of command injection).
    /// Typically: if `reader.buffer()` is not empty, reject the command or drop
    /// the buffered bytes, then `reader.into_inner().start_tls(acceptor)`.
    ///
    /// There is no built-in timeout; wrap the call in `tokio::time::timeout`.
    /// On failure the connection is gone and should be dropped. Calling this on
    /// a stream that is already TLS returns an `InvalidInput` error.
    pub async fn start_tls(self, acceptor: &TlsAcceptor) -> io::Result<Stream> {
        match self {
            Stream::Plain(tcp) => Ok(Stream::Tls(Box::new(acceptor.accept(tcp).await?))),
            Stream::Tls(_) => {
                Err(io::Error::new(io::ErrorKind::InvalidInput, "TLS is already active on this connection"))
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    /// On TLS this sends close_notify before closing the write side.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
