//! The SMTP server of postamt: the incoming MX service (port 25) and the submission
//! services (587 with STARTTLS, 465 with implicit TLS) of RFC 5321 and RFC 6409.
//!
//! - [`parse`]: command lines to [`parse::Command`]s (pure).
//! - [`data`]: the DATA terminator and dot-unstuffing state machine (pure).
//! - [`reply`]: reply formatting.
//! - [`session`]: the state machine of one connection, which hands accepted messages to
//!   `postamt-delivery`.

pub mod data;
pub mod parse;
pub mod reply;
pub mod session;

pub use session::{Mode, SmtpService};
