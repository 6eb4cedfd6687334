//! Start-up time: from spawning a server to its first greeting on a given port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::stats::Figures;
use crate::{BenchError, Result};

/// Options of [`measure`].
#[derive(Debug, Clone)]
pub struct StartupOptions {
    /// Where the server greets once it accepts connections.
    pub connect: SocketAddr,
    /// The server command and its arguments; it must stay in the foreground.
    pub command: Vec<String>,
    pub timeout: Duration,
    /// Where to write the started server's process id.
    pub pidfile: Option<PathBuf>,
    /// Where the server's standard output and error go.
    pub output: ChildOutput,
}

/// Where a started server's output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildOutput {
    Inherit,
    Discard,
    /// Appended to this file.
    File(PathBuf),
}

impl ChildOutput {
    fn stdio(&self) -> Result<(Stdio, Stdio)> {
        Ok(match self {
            ChildOutput::Inherit => (Stdio::inherit(), Stdio::inherit()),
            ChildOutput::Discard => (Stdio::null(), Stdio::null()),
            ChildOutput::File(path) => {
                let file =
                    std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|source| {
                        BenchError::System { what: format!("cannot open {}", path.display()), source }
                    })?;
                let err = file.try_clone().map_err(|source| BenchError::System {
                    what: format!("cannot open {}", path.display()),
                    source,
                })?;
                (Stdio::from(file), Stdio::from(err))
            }
        })
    }
}

/// Spawns the server (standard input closed, output as `output` says) and polls `connect` until a
/// connection is accepted and greeted. The server keeps running afterwards.
pub async fn measure(opts: &StartupOptions) -> Result<Figures> {
    let (program, args) =
        opts.command.split_first().ok_or_else(|| BenchError::Invalid("no server command given".into()))?;
    let (stdout, stderr) = opts.output.stdio()?;
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|source| BenchError::System { what: format!("cannot start {program}"), source })?;
    let pid = child.id();
    if let Some(path) = &opts.pidfile {
        std::fs::write(path, format!("{pid}\n")).map_err(|source| BenchError::System {
            what: format!("cannot write {}", path.display()),
            source,
        })?;
    }
    let greeted = loop {
        if start.elapsed() > opts.timeout {
            return Err(BenchError::Timeout(format!("{program} did not greet on {}", opts.connect)));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(BenchError::Invalid(format!("{program} exited with {status} before greeting")));
        }
        if let Some(t) = greeting(opts.connect).await {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let accepted = greeted.duration_since(start);
    let mut f = Figures::new("startup");
    f.text("command", opts.command.join(" "))
        .int("pid", u64::from(pid))
        .num("startup_ms", accepted.as_secs_f64() * 1000.0);
    Ok(f)
}

/// When the first byte of a greeting arrived, if the server accepts connections yet.
async fn greeting(addr: SocketAddr) -> Option<Instant> {
    let mut stream =
        tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await.ok()?.ok()?;
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte)).await.ok()?.ok()?;
    (n == 1).then(Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_that_never_listens_times_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let opts = StartupOptions {
            connect: addr,
            command: vec!["sleep".into(), "5".into()],
            timeout: Duration::from_millis(300),
            pidfile: None,
            output: ChildOutput::Discard,
        };
        assert!(matches!(measure(&opts).await, Err(BenchError::Timeout(_))));
        let opts = StartupOptions { command: vec!["true".into()], timeout: Duration::from_secs(5), ..opts };
        assert!(matches!(measure(&opts).await, Err(BenchError::Invalid(_))));
    }
}
