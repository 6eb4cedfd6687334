//! The buffered connection of one protocol session (SMTP, IMAP, POP3).
//!
//! Replies are collected and written only before the session next waits for input, which is
//! what pipelining asks for (SMTP PIPELINING, RFC 2920; IMAP, RFC 9051 section 5.5; POP3,
//! RFC 2449): a batch of pipelined commands gets its replies in one write. Reads are
//! bounded: a line longer than the limit is discarded up to its end.
//!
//! A session may turn on DEFLATE compression (IMAP COMPRESS, RFC 4978) with
//! [`Io::start_deflate`]: from then on each flush compresses the batch and ends it with a
//! sync flush (so the peer can decode everything sent so far), and each fill inflates what
//! arrives, at most [`INFLATE_LIMIT`] octets at a time so that a small compressed input cannot
//! blow up the buffer. Nothing changes for sessions that never turn it on.

use std::io;
use std::time::Duration;

use crate::Stream;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Why reading stopped.
#[derive(Debug)]
pub enum ReadError {
    Eof,
    Timeout,
    Shutdown,
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        ReadError::Io(e)
    }
}

pub enum Line {
    Complete(Vec<u8>),
    /// The line exceeded the limit and was discarded; its first bytes are kept so that the
    /// session can still name the command (an IMAP tag, say) in its error.
    TooLong(Vec<u8>),
}

/// How much of an over-long line is kept for the error response.
const TOO_LONG_PREFIX: usize = 64;

const READ_CHUNK: usize = 16 * 1024;
/// What a session reads into after small reads (interactive commands): thousands of
/// connections waiting in IDLE must not pin a full chunk each.
const IDLE_CHUNK: usize = 1024;
/// How long one write may wait for a client that does not read. Without it a stalled client
/// would hold its session (and any lock it has, such as a POP3 maildrop) for as long as TCP
/// keeps the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Most octets one fill inflates before handing them to the session.
pub const INFLATE_LIMIT: usize = 64 * 1024;

/// Both directions of a DEFLATE layer (raw deflate, RFC 1951, as RFC 4978 section 3 asks).
struct Deflate {
    compress: Compress,
    decompress: Decompress,
    /// Compressed input received but not inflated yet.
    pending: Vec<u8>,
}

impl Deflate {
    /// Compresses `data` followed by a sync flush.
    fn deflate(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut pos = 0;
        loop {
            out.reserve(4096.max(data.len() - pos));
            let before = self.compress.total_in();
            self.compress
                .compress_vec(&data[pos..], &mut out, FlushCompress::Sync)
                .map_err(|e| io::Error::other(e.to_string()))?;
            pos += usize::try_from(self.compress.total_in() - before)
                .unwrap_or(usize::MAX)
                .min(data.len() - pos);
            // The flush is complete once all input is taken and output space was left over.
            if pos == data.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }

    /// Inflates pending input into `out`, up to about `limit` octets; returns how many.
    fn inflate(&mut self, out: &mut Vec<u8>, limit: usize) -> io::Result<usize> {
        let start = out.len();
        let mut taken = 0;
        while out.len() - start < limit {
            out.reserve(READ_CHUNK);
            let (before_in, before_out) = (self.decompress.total_in(), self.decompress.total_out());
            let status = self
                .decompress
                .decompress_vec(&self.pending[taken..], out, FlushDecompress::None)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let consumed = usize::try_from(self.decompress.total_in() - before_in).unwrap_or(0);
            taken = (taken + consumed).min(self.pending.len());
            let produced = self.decompress.total_out() - before_out;
            if status == Status::StreamEnd {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "compressed stream ended"));
            }
            // No progress: everything buffered is inside the decompressor's window.
            if produced == 0 && (consumed == 0 || taken >= self.pending.len()) {
                break;
            }
        }
        self.pending.drain(..taken);
        Ok(out.len() - start)
    }
}

pub struct Io {
    stream: Option<Stream>,
    rbuf: Vec<u8>,
    rpos: usize,
    /// Bytes the last read returned: below [`IDLE_CHUNK`] the session is interactive (small
    /// buffers), at or above it input streams in (full chunks).
    last_read: usize,
    pub wbuf: Vec<u8>,
    deflate: Option<Box<Deflate>>,
}

impl Io {
    pub fn new(stream: Stream) -> Io {
        Io { stream: Some(stream), rbuf: Vec::new(), rpos: 0, last_read: 0, wbuf: Vec::new(), deflate: None }
    }

    /// Whether DEFLATE compression is on.
    pub fn is_compressed(&self) -> bool {
        self.deflate.is_some()
    }

    /// Turns on DEFLATE in both directions (RFC 4978). Call it after the response that
    /// confirms it has been flushed: that one still goes out uncompressed. Input the peer sent
    /// after its command is already compressed and is inflated from here on.
    pub fn start_deflate(&mut self) {
        let mut deflate = Box::new(Deflate {
            compress: Compress::new(Compression::fast(), false),
            decompress: Decompress::new(false),
            pending: Vec::new(),
        });
        deflate.pending.extend_from_slice(self.buffered());
        self.rbuf.clear();
        self.rpos = 0;
        self.deflate = Some(deflate);
    }

    pub fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_tls())
    }

    /// TLS version and cipher, for the Received header.
    pub fn tls_info(&self) -> Option<String> {
        self.stream.as_ref().and_then(|s| s.tls_info()).map(|i| i.to_string())
    }

    pub fn buffered(&self) -> &[u8] {
        &self.rbuf[self.rpos..]
    }

    pub fn consume(&mut self, n: usize) {
        self.rpos += n;
        if self.rpos >= self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            let compressed = match self.deflate.as_mut() {
                Some(d) => Some(d.deflate(&self.wbuf)?),
                None => None,
            };
            let stream = self
                .stream
                .as_mut()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "stream closed"))?;
            let bytes = compressed.as_deref().unwrap_or(&self.wbuf);
            let write = async {
                stream.write_all(bytes).await?;
                stream.flush().await
            };
            tokio::time::timeout(WRITE_TIMEOUT, write)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client does not read"))??;
            // Given back, not kept: a session waiting for its next command (thousands of them
            // in IDLE) then holds no write buffer, and the next batch's allocation costs far
            // less than its write.
            self.wbuf = Vec::new();
        }
        Ok(())
    }

    /// Flushes pending replies, then waits for more input. With `shutdown`, gives up when
    /// the server is shutting down (used only between commands). Cancel-safe once the
    /// flush is done: bytes are appended only as they are read.
    pub async fn fill(
        &mut self,
        timeout: Duration,
        shutdown: Option<&CancellationToken>,
    ) -> Result<(), ReadError> {
        self.flush().await?;
        if self.rpos > 0 {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        // Nothing buffered: give the buffer back while waiting, and take one only once input
        // is there (see `Stream::read_ready`), so that an idle session holds none. After small
        // reads (interactive commands) a small one; streaming input (DATA, an APPEND
        // literal) reads in full chunks.
        if self.rbuf.is_empty() {
            self.rbuf = Vec::new();
        }
        let chunk = if self.last_read >= IDLE_CHUNK { READ_CHUNK } else { IDLE_CHUNK };
        if let Some(deflate) = self.deflate.as_mut()
            && !deflate.pending.is_empty()
            && deflate.inflate(&mut self.rbuf, INFLATE_LIMIT)? > 0
        {
            return Ok(());
        }
        loop {
            let stream = self.stream.as_mut().ok_or(ReadError::Eof)?;
            let target = match self.deflate.as_mut() {
                Some(d) => &mut d.pending,
                None => &mut self.rbuf,
            };
            let read = tokio::time::timeout(timeout, async {
                stream.read_ready().await?;
                // Never without spare room: a read into a full buffer returns 0, taken as EOF.
                target.reserve(chunk);
                stream.read_buf(target).await
            });
            let result = match shutdown {
                Some(token) => tokio::select! {
                    r = read => r,
                    _ = token.cancelled() => return Err(ReadError::Shutdown),
                },
                None => read.await,
            };
            match result {
                Err(_) => return Err(ReadError::Timeout),
                Ok(Err(e)) => return Err(ReadError::Io(e)),
                Ok(Ok(0)) => return Err(ReadError::Eof),
                Ok(Ok(n)) => self.last_read = n,
            }
            match self.deflate.as_mut() {
                // A partial deflate block may inflate to nothing yet: read on.
                Some(d) => {
                    if d.inflate(&mut self.rbuf, INFLATE_LIMIT)? > 0 {
                        return Ok(());
                    }
                }
                None => return Ok(()),
            }
        }
    }

    /// Reads exactly `n` bytes, appending them to `sink` (or dropping them when `None`).
    pub async fn read_exact_into(
        &mut self,
        n: u64,
        mut sink: Option<&mut Vec<u8>>,
        timeout: Duration,
    ) -> Result<(), ReadError> {
        let mut left = n;
        while left > 0 {
            if self.buffered().is_empty() {
                self.fill(timeout, None).await?;
            }
            let take = self.buffered().len().min(usize::try_from(left).unwrap_or(usize::MAX));
            if let Some(sink) = sink.as_deref_mut() {
                sink.extend_from_slice(&self.buffered()[..take]);
            }
            self.consume(take);
            left -= take as u64;
        }
        Ok(())
    }

    /// Reads one line (without its line end) of at most `max` bytes including CRLF. A longer
    /// line is consumed to its end and reported as `TooLong`. Only between commands does a
    /// server shutdown interrupt the wait.
    pub async fn read_line(
        &mut self,
        max: usize,
        timeout: Duration,
        shutdown: Option<&CancellationToken>,
    ) -> Result<Line, ReadError> {
        let mut discarded: Option<Vec<u8>> = None;
        loop {
            let buffered = self.buffered();
            if let Some(pos) = buffered.iter().position(|&b| b == b'\n') {
                let too_long = discarded.is_some() || pos + 1 > max;
                let line = if too_long {
                    let prefix =
                        discarded.take().unwrap_or_else(|| buffered[..pos.min(TOO_LONG_PREFIX)].to_vec());
                    Line::TooLong(prefix)
                } else {
                    let end = if pos > 0 && buffered[pos - 1] == b'\r' { pos - 1 } else { pos };
                    Line::Complete(buffered[..end].to_vec())
                };
                self.consume(pos + 1);
                return Ok(line);
            }
            if buffered.len() >= max {
                if discarded.is_none() {
                    discarded = Some(buffered[..buffered.len().min(TOO_LONG_PREFIX)].to_vec());
                }
                let n = buffered.len();
                self.consume(n);
            }
            let interruptible =
                if self.buffered().is_empty() && discarded.is_none() { shutdown } else { None };
            self.fill(timeout, interruptible).await?;
        }
    }

    /// Takes the stream out for a TLS upgrade, discarding every byte the client sent ahead
    /// of the handshake (the CVE-2011-0411 class of STARTTLS command injection).
    pub fn take_for_tls(&mut self) -> Option<(Stream, usize)> {
        let discarded = self.buffered().len();
        self.rbuf.clear();
        self.rpos = 0;
        self.stream.take().map(|s| (s, discarded))
    }

    pub fn put_stream(&mut self, stream: Stream) {
        self.stream = Some(stream);
    }

    pub async fn shutdown(&mut self) {
        let _ = self.flush().await;
        if let Some(stream) = self.stream.as_mut() {
            let _ = stream.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (Io, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (Io::new(Stream::Plain(server)), client)
    }

    fn line(l: Line) -> Vec<u8> {
        match l {
            Line::Complete(v) => v,
            Line::TooLong(_) => panic!("line too long"),
        }
    }

    #[tokio::test]
    async fn a_waiting_session_holds_no_buffers_and_pipelined_input_survives() {
        let (mut io, mut client) = pair().await;
        let t = Duration::from_secs(5);
        client.write_all(b"a1 NOOP\r\na2 NOOP\r\na3 ID").await.expect("write");
        assert_eq!(line(io.read_line(1000, t, None).await.expect("read")), b"a1 NOOP");
        io.wbuf.extend_from_slice(b"a1 OK\r\n");
        // The second command is already buffered: no wait, nothing given back.
        assert_eq!(line(io.read_line(1000, t, None).await.expect("read")), b"a2 NOOP");
        io.wbuf.extend_from_slice(b"a2 OK\r\n");
        client.write_all(b" NIL\r\n").await.expect("write");
        assert_eq!(line(io.read_line(1000, t, None).await.expect("read")), b"a3 ID NIL");

        // Waiting for the next command (as in IDLE): replies flushed, both buffers released.
        let waited = tokio::time::timeout(Duration::from_millis(50), io.fill(t, None)).await;
        assert!(waited.is_err(), "no input yet");
        assert_eq!((io.rbuf.capacity(), io.wbuf.capacity()), (0, 0));
        let mut replies = [0u8; 14];
        client.read_exact(&mut replies).await.expect("replies");
        assert_eq!(&replies, b"a1 OK\r\na2 OK\r\n");

        // Input after the wait is read as before.
        client.write_all(b"DONE\r\n").await.expect("write");
        assert_eq!(line(io.read_line(1000, t, None).await.expect("read")), b"DONE");
        drop(client);
        assert!(matches!(io.read_line(1000, t, None).await, Err(ReadError::Eof)));
    }
}
