//! The buffered connection of one protocol session (SMTP, IMAP, POP3).
//!
//! Replies are collected and written only before the session next waits for input, which is
//! what pipelining asks for (SMTP PIPELINING, RFC 2920; IMAP, RFC 9051 section 5.5; POP3,
//! RFC 2449): a batch of pipelined commands gets its replies in one write. Reads are
//! bounded: a line longer than the limit is discarded up to its end.

use std::io;
use std::time::Duration;

use crate::Stream;
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
/// How long one write may wait for a client that does not read. Without it a stalled client
/// would hold its session (and any lock it has, such as a POP3 maildrop) for as long as TCP
/// keeps the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

pub struct Io {
    stream: Option<Stream>,
    rbuf: Vec<u8>,
    rpos: usize,
    pub wbuf: Vec<u8>,
}

impl Io {
    pub fn new(stream: Stream) -> Io {
        Io { stream: Some(stream), rbuf: Vec::with_capacity(READ_CHUNK), rpos: 0, wbuf: Vec::new() }
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
            let stream = self
                .stream
                .as_mut()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "stream closed"))?;
            let write = async {
                stream.write_all(&self.wbuf).await?;
                stream.flush().await
            };
            tokio::time::timeout(WRITE_TIMEOUT, write)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client does not read"))??;
            self.wbuf.clear();
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
        self.rbuf.reserve(READ_CHUNK);
        let stream = self.stream.as_mut().ok_or(ReadError::Eof)?;
        let read = tokio::time::timeout(timeout, stream.read_buf(&mut self.rbuf));
        let result = match shutdown {
            Some(token) => tokio::select! {
                r = read => r,
                _ = token.cancelled() => return Err(ReadError::Shutdown),
            },
            None => read.await,
        };
        match result {
            Err(_) => Err(ReadError::Timeout),
            Ok(Err(e)) => Err(ReadError::Io(e)),
            Ok(Ok(0)) => Err(ReadError::Eof),
            Ok(Ok(_)) => Ok(()),
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
