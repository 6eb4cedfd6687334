//! Outgoing mail: the queue runner that delivers what submission put into the outbound queue
//! to the recipients' servers, retries, and bounces.
//!
//! - [`runner`]: [`Outbound`], the runner: claims due queue entries with a lease, groups
//!   their recipients by next hop (smarthost, static route, or MX), delivers, records the
//!   outcome and the bounce atomically, reschedules per `[queue] retry` until `[queue]
//!   lifetime`.
//! - [`dns`]: MX ordering (RFC 5321 5.1), implicit MX, null MX (RFC 7505), on
//!   hickory-resolver.
//! - [`client`]: the SMTP client (EHLO, STARTTLS, AUTH, PIPELINING, SIZE, 8BITMIME,
//!   SMTPUTF8, DSN), with the time-outs of RFC 5321 4.5.3.2.
//! - [`reply`]: SMTP replies and EHLO keywords, parsed from bytes (pure).
//! - [`dsn`]: delivery status notifications (RFC 3464, RFC 3461 section 6, RFC 6533).
//!
//! This crate sees the store only through `SharedStore`, and uses `postamt-delivery` to route
//! a bounce to its recipient (a local account or another queue entry). It depends on no
//! protocol crate.

pub mod client;
pub mod dns;
pub mod dsn;
pub mod reply;
pub mod runner;

pub use runner::{Outbound, OutboundError};
