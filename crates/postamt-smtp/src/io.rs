//! The buffered connection of one SMTP session.
//!
//! Replies are collected and written only before the session next waits for input, which is
//! what PIPELINING (RFC 2920) asks for: a batch of pipelined commands gets its replies in one
//! write. Reads are bounded: a line longer than the limit is discarded up to its end.

use std::io;
use std::time::Duration;

use postamt_net::Stream;
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
    TooLong,
}

const READ_CHUNK: usize = 16 * 1024;

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

    fn stream(&mut self) -> io::Result<&mut Stream> {
        self.stream.as_mut().ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "stream closed"))
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
            let wbuf = std::mem::take(&mut self.wbuf);
            let stream = self.stream()?;
            stream.write_all(&wbuf).await?;
            stream.flush().await?;
            self.wbuf = wbuf;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Flushes pending replies, then waits for more input. With `shutdown`, gives up when
    /// the server is shutting down (used only between commands).
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
        let start = self.rbuf.len();
        self.rbuf.resize(start + READ_CHUNK, 0);
        let stream = self.stream.as_mut().ok_or(ReadError::Eof)?;
        let read = tokio::time::timeout(timeout, stream.read(&mut self.rbuf[start..]));
        let result = match shutdown {
            Some(token) => tokio::select! {
                r = read => r,
                _ = token.cancelled() => {
                    self.rbuf.truncate(start);
                    return Err(ReadError::Shutdown);
                }
            },
            None => read.await,
        };
        match result {
            Err(_) => {
                self.rbuf.truncate(start);
                Err(ReadError::Timeout)
            }
            Ok(Err(e)) => {
                self.rbuf.truncate(start);
                Err(ReadError::Io(e))
            }
            Ok(Ok(0)) => {
                self.rbuf.truncate(start);
                Err(ReadError::Eof)
            }
            Ok(Ok(n)) => {
                self.rbuf.truncate(start + n);
                Ok(())
            }
        }
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
        let mut discarding = false;
        loop {
            let buffered = self.buffered();
            if let Some(pos) = buffered.iter().position(|&b| b == b'\n') {
                let too_long = discarding || pos + 1 > max;
                let line = if too_long {
                    Line::TooLong
                } else {
                    let end = if pos > 0 && buffered[pos - 1] == b'\r' { pos - 1 } else { pos };
                    Line::Complete(buffered[..end].to_vec())
                };
                self.consume(pos + 1);
                return Ok(line);
            }
            if buffered.len() >= max {
                discarding = true;
                let n = buffered.len();
                self.consume(n);
            }
            let interruptible = if self.buffered().is_empty() && !discarding { shutdown } else { None };
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
