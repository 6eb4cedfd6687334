//! The POP3 server of postamt: the `pop3` service (port 110, STLS) and the `pop3s` service
//! (port 995, implicit TLS).
//!
//! Protocol: RFC 1939 (POP3), RFC 2449 (CAPA, PIPELINING, RESP-CODES, EXPIRE,
//! IMPLEMENTATION), RFC 2595 (STLS), RFC 5034 (SASL AUTH with PLAIN and LOGIN, initial
//! responses) and RFC 3206 (the `[SYS/...]` and `[AUTH]` response codes, AUTH-RESP-CODE).
//!
//! - [`parse`]: command lines to [`parse::Command`]s (pure).
//! - [`response`]: `+OK` / `-ERR [CODE]` response lines.
//! - [`message`]: byte-stuffing and TOP extraction of message bodies (pure).
//! - [`lock`]: the in-process exclusive lock on an account's maildrop.
//! - the buffered connection (bounded line reads, pipelined response flushing) is
//!   `postamt_net::io`, shared with the other protocols.
//! - [`session`]: the state machine of one connection (AUTHORIZATION, TRANSACTION, UPDATE)
//!   over the account's INBOX in the store.

pub mod lock;
pub mod message;
pub mod parse;
pub mod response;
pub mod session;

pub use lock::MaildropLocks;
pub use session::Pop3Service;
