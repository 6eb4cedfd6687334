//! The IMAP server of postamt (RFC 9051 IMAP4rev2 and RFC 3501 IMAP4rev1).
//!
//! - [`command`]: the parsed form of every client command (the AST).
//! - [`parse`]: bytes of one complete command (literals included) to a [`command::Request`];
//!   pure, fuzzable. [`parse::literal_suffix`] tells the session's framer when a line
//!   announces a literal.
//! - [`mutf7`]: modified UTF-7 mailbox names (RFC 3501 section 5.1.3) for IMAP4rev1 clients.
//! - [`response`]: response syntax (strings, literals, flag lists, dates).
//! - `session`: one connection's state machine; `session::selected` keeps the selected
//!   mailbox's view (sequence numbers, pending changes) in step with the store, reading only
//!   what changed since its MODSEQ (which also serves CONDSTORE and QRESYNC, RFC 7162);
//!   `fetch`, `search`, `sort` (SORT, ESORT, THREAD), `quota` (RFC 9208) and `metadata`
//!   (RFC 5464) answer their commands.

pub mod command;
pub mod mutf7;
pub mod parse;
pub mod response;
mod session;

pub use session::ImapService;
