//! Test messages: realistic sizes and structure, cheap to produce in bulk.
//!
//! Sizes follow a log-normal distribution with a median of 20 KB, clamped to 1 KB .. 1 MB
//! (mean about 33 KB: most mail is small text, some carries attachments). Messages above
//! 40 KB are `multipart/mixed` with a text part and a base64 attachment, so that
//! BODYSTRUCTURE has something to describe. A [`Pool`] of bodies is generated once; each
//! message is then unique headers (Message-ID, Subject with a sequence number) in front of a
//! pooled body, so that no two messages are byte-identical (a content-addressed store cannot
//! deduplicate them) and generating load costs almost nothing.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How message sizes are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeSpec {
    /// Log-normal, median 20 KB, 1 KB .. 1 MB.
    Mixed,
    /// Every body this many bytes (give or take a line).
    Fixed(usize),
}

impl SizeSpec {
    /// `mixed`, or a size such as `10k`, `1m`, `2000`.
    pub fn parse(s: &str) -> Option<SizeSpec> {
        if s.eq_ignore_ascii_case("mixed") {
            return Some(SizeSpec::Mixed);
        }
        let lower = s.to_ascii_lowercase();
        let (digits, factor) = match lower.as_bytes().last()? {
            b'k' => (&lower[..lower.len() - 1], 1024),
            b'm' => (&lower[..lower.len() - 1], 1024 * 1024),
            _ => (&lower[..], 1),
        };
        digits.parse::<usize>().ok().map(|n| SizeSpec::Fixed(n * factor))
    }
}

pub const MIN_SIZE: usize = 1024;
pub const MAX_SIZE: usize = 1024 * 1024;
const MEDIAN: f64 = 20_000.0;
const SIGMA: f64 = 1.0;
/// Bodies kept in a pool.
const POOL_SIZE: usize = 256;

const WORDS: &[&str] = &[
    "the", "meeting", "project", "invoice", "report", "please", "attached", "schedule", "review", "budget",
    "thanks", "regards", "tomorrow", "customer", "order", "shipping", "update", "team", "draft", "version",
    "deadline", "question", "answer", "server", "mail", "account", "release", "notes", "summary", "weekly",
    "monday", "friday", "call", "agenda", "minutes", "contract", "proposal", "feedback", "ticket", "issue",
    "fixed", "deployed", "backup", "storage", "quota", "and", "of", "to", "in", "for", "with", "on", "at",
    "from", "by", "about", "as", "into",
];

/// Pre-generated message bodies (MIME headers, blank line, content), each dot-safe: no line
/// starts with `.`, every line ends in CRLF and stays under 80 characters.
pub struct Pool {
    bodies: Vec<Arc<Vec<u8>>>,
}

impl Pool {
    pub fn new(spec: SizeSpec, seed: u64) -> Pool {
        let mut rng = StdRng::seed_from_u64(seed);
        let bodies = (0..POOL_SIZE)
            .map(|_| {
                let size = match spec {
                    SizeSpec::Mixed => sample_size(&mut rng),
                    SizeSpec::Fixed(n) => n,
                };
                Arc::new(body(&mut rng, size))
            })
            .collect();
        Pool { bodies }
    }

    /// The body for message number `i`.
    pub fn body(&self, i: u64) -> &Arc<Vec<u8>> {
        &self.bodies[(i % self.bodies.len() as u64) as usize]
    }

    /// A complete message number `i` from `from` to `to`.
    pub fn message(&self, i: u64, from: &str, to: &str) -> Vec<u8> {
        let body = self.body(i);
        let word = WORDS[(i % WORDS.len() as u64) as usize];
        let mut m = format!(
            "From: Load Generator <{from}>\r\nTo: <{to}>\r\nSubject: Bench message {i} about {word}\r\n\
             Date: Mon, 01 Dec 2025 10:00:00 +0000\r\nMessage-ID: <bench.{i}.{:08x}@bench.example>\r\n",
            rand::random::<u32>()
        )
        .into_bytes();
        m.reserve(body.len());
        m.extend_from_slice(body);
        m
    }

    /// Mean body size in bytes.
    pub fn mean_size(&self) -> usize {
        self.bodies.iter().map(|b| b.len()).sum::<usize>() / self.bodies.len()
    }
}

/// A log-normal size (Box-Muller for the normal deviate), clamped.
pub fn sample_size(rng: &mut StdRng) -> usize {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    let size = (MEDIAN.ln() + SIGMA * z).exp();
    (size as usize).clamp(MIN_SIZE, MAX_SIZE)
}

/// A body of about `size` bytes: text/plain, or multipart/mixed with an attachment above 40 KB.
fn body(rng: &mut StdRng, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 1024);
    if size <= 40 * 1024 {
        out.extend_from_slice(b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
        text(rng, &mut out, size);
        return out;
    }
    let boundary = format!("=_bench_{:016x}", rng.random::<u64>());
    out.extend_from_slice(
        format!(
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
             This is a multi-part message in MIME format.\r\n\r\n--{boundary}\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n"
        )
        .as_bytes(),
    );
    text(rng, &mut out, 2000);
    out.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n\
             Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        )
        .as_bytes(),
    );
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let target = size.saturating_sub(200);
    while out.len() < target {
        for _ in 0..76 {
            out.push(B64[rng.random_range(0..64)]);
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// Appends lines of words until `out` has grown by about `len` bytes.
fn text(rng: &mut StdRng, out: &mut Vec<u8>, len: usize) {
    let end = out.len() + len;
    while out.len() < end {
        let mut line = 0;
        while line < 66 {
            let word = WORDS[rng.random_range(0..WORDS.len())];
            if line > 0 {
                out.push(b' ');
                line += 1;
            }
            out.extend_from_slice(word.as_bytes());
            line += word.len();
        }
        out.extend_from_slice(b"\r\n");
        if rng.random_range(0..8) == 0 {
            out.extend_from_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_realistic() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut sizes: Vec<usize> = (0..20_000).map(|_| sample_size(&mut rng)).collect();
        sizes.sort_unstable();
        let median = sizes[sizes.len() / 2];
        assert!((17_000..23_000).contains(&median), "median {median}");
        assert!(sizes[0] >= MIN_SIZE && *sizes.last().expect("some") <= MAX_SIZE);
        let mean = sizes.iter().sum::<usize>() / sizes.len();
        assert!((28_000..40_000).contains(&mean), "mean {mean}");
    }

    #[test]
    fn messages_are_unique_dot_safe_and_well_formed() {
        let pool = Pool::new(SizeSpec::Mixed, 1);
        let a = pool.message(1, "s@x.example", "r@y.example");
        let b = pool.message(1 + POOL_SIZE as u64, "s@x.example", "r@y.example");
        assert_ne!(a, b, "same pooled body, different headers");
        for i in 0..POOL_SIZE as u64 {
            let m = pool.message(i, "s@x.example", "r@y.example");
            assert!(m.ends_with(b"\r\n"));
            for line in m.split(|&c| c == b'\n') {
                assert!(!line.starts_with(b"."), "a line needing dot-stuffing");
                assert!(line.len() < 100);
            }
            assert_eq!(
                m.iter().filter(|&&c| c == b'\n').count(),
                m.windows(2).filter(|w| w == b"\r\n").count()
            );
        }
        let fixed = Pool::new(SizeSpec::Fixed(10 * 1024), 1);
        let size = fixed.mean_size();
        assert!((10 * 1024..11 * 1024).contains(&size), "{size}");
    }

    #[test]
    fn size_specs() {
        assert_eq!(SizeSpec::parse("mixed"), Some(SizeSpec::Mixed));
        assert_eq!(SizeSpec::parse("10k"), Some(SizeSpec::Fixed(10 * 1024)));
        assert_eq!(SizeSpec::parse("1M"), Some(SizeSpec::Fixed(1024 * 1024)));
        assert_eq!(SizeSpec::parse("500"), Some(SizeSpec::Fixed(500)));
        assert_eq!(SizeSpec::parse("x"), None);
    }
}
