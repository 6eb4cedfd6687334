//! Plain data types of the storage interface, shared by every backend and every protocol.

use std::fmt;

/// Row id of an account.
pub type AccountId = i64;
/// Row id of a mailbox (stable across renames).
pub type MailboxId = i64;
/// IMAP UID: unique within one mailbox and one UIDVALIDITY, never reused.
pub type Uid = u32;
/// Modification sequence (RFC 7162): grows with every change in a mailbox.
pub type ModSeq = u64;
/// Identifier of an outbound queue entry.
pub type QueueId = String;

/// Content hash (BLAKE3) naming a stored message body.
///
/// Held as the 32 raw bytes, inline: every message's metadata carries one (a selected IMAP
/// mailbox keeps them for all its messages), and a 64-digit string would be a heap allocation
/// each. Outside memory (file names, the database's TEXT columns, protocol ids) it is always
/// written as 64 lower-case hex digits, see [`BlobId::hex`]; the derived order is the order
/// of that text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId([u8; 32]);

impl BlobId {
    /// Reads a hex hash, refusing anything that is not 64 lower-case hex digits (blob ids
    /// become file names, so they must never contain path characters).
    pub fn parse(hex: &str) -> Option<BlobId> {
        fn digit(b: u8) -> Option<u8> {
            match b {
                b'0'..=b'9' => Some(b - b'0'),
                b'a'..=b'f' => Some(b - b'a' + 10),
                _ => None,
            }
        }
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            *byte = (digit(pair[0])? << 4) | digit(pair[1])?;
        }
        Some(BlobId(bytes))
    }

    pub fn of(bytes: &[u8]) -> BlobId {
        BlobId(*blake3::hash(bytes).as_bytes())
    }

    /// The id as 64 lower-case hex digits (held inline, no allocation).
    pub fn hex(&self) -> BlobHex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, byte) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0xf)];
        }
        BlobHex(out)
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", self.hex().as_str())
    }
}

/// A [`BlobId`] written out: its 64 lower-case hex digits. Dereferences to `str`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BlobHex([u8; 64]);

impl BlobHex {
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written into it (`BlobId::hex`), so this never fails.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for BlobHex {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for BlobHex {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<std::path::Path> for BlobHex {
    fn as_ref(&self) -> &std::path::Path {
        self.as_str().as_ref()
    }
}

impl fmt::Display for BlobHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for BlobHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// One mail account: a mailbox tree, a password, a quota, addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    /// Primary address (lower-case), also the login name.
    pub address: String,
    pub domain: String,
    /// PHC string (argon2id).
    pub password_hash: String,
    /// Storage limit in bytes; `None` is unlimited.
    pub quota: Option<u64>,
    pub used_bytes: u64,
    pub used_messages: u64,
    pub imap_enabled: bool,
    pub pop3_enabled: bool,
    pub admin: bool,
    pub disabled: bool,
}

impl Account {
    /// Whether `extra` more bytes fit into the quota.
    pub fn has_room_for(&self, extra: u64) -> bool {
        self.quota.is_none_or(|q| self.used_bytes.saturating_add(extra) <= q)
    }

    /// Whether the account is already at or over its limit (nothing more fits).
    pub fn is_full(&self) -> bool {
        self.quota.is_some_and(|q| self.used_bytes >= q)
    }
}

/// What `create_account` needs.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub address: String,
    pub password_hash: String,
    pub quota: Option<u64>,
    pub admin: bool,
}

/// Changes to an account's switches; `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountSettings {
    pub imap_enabled: Option<bool>,
    pub pop3_enabled: Option<bool>,
    pub admin: Option<bool>,
    pub disabled: Option<bool>,
}

/// An extra address (or `@domain` catch-all) delivering into an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub alias: String,
    /// Primary address of the target account.
    pub target: String,
}

/// RFC 6154 special-use roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
}

impl SpecialUse {
    /// The attribute as IMAP writes it, e.g. `\Sent`.
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }

    /// Parses an attribute, case-insensitively, with or without the backslash.
    pub fn from_attribute(s: &str) -> Option<SpecialUse> {
        let s = s.strip_prefix('\\').unwrap_or(s);
        Some(match s.to_ascii_lowercase().as_str() {
            "all" => SpecialUse::All,
            "archive" => SpecialUse::Archive,
            "drafts" => SpecialUse::Drafts,
            "flagged" => SpecialUse::Flagged,
            "junk" => SpecialUse::Junk,
            "sent" => SpecialUse::Sent,
            "trash" => SpecialUse::Trash,
            _ => return None,
        })
    }
}

/// The mailboxes every new account gets, with their roles.
pub const DEFAULT_MAILBOXES: &[(&str, Option<SpecialUse>)] = &[
    ("INBOX", None),
    ("Sent", Some(SpecialUse::Sent)),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Archive", Some(SpecialUse::Archive)),
];

/// The mailbox hierarchy delimiter: `Work/Projects` is an inferior of `Work`.
pub const HIERARCHY_DELIMITER: char = '/';

/// A mailbox (folder) and its IMAP counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub id: MailboxId,
    pub account: AccountId,
    pub name: String,
    pub special_use: Option<SpecialUse>,
    pub uidvalidity: u32,
    pub uidnext: Uid,
    pub highestmodseq: ModSeq,
    pub subscribed: bool,
    pub messages: u32,
}

/// The system flags of RFC 9051 section 2.3.2, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Flags(pub u8);

impl Flags {
    pub const SEEN: Flags = Flags(1);
    pub const ANSWERED: Flags = Flags(2);
    pub const FLAGGED: Flags = Flags(4);
    pub const DELETED: Flags = Flags(8);
    pub const DRAFT: Flags = Flags(16);
    pub const NONE: Flags = Flags(0);

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
    pub fn minus(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }
}

/// Metadata of one stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: Uid,
    pub blob: BlobId,
    pub size: u64,
    /// Unix seconds.
    pub internal_date: i64,
    pub flags: Flags,
    /// Sorted, de-duplicated IMAP keywords.
    pub keywords: Vec<String>,
    pub modseq: ModSeq,
    /// When the message was saved into this mailbox (delivery, APPEND, COPY or MOVE), Unix
    /// seconds (RFC 8514 SAVEDATE).
    pub savedate: i64,
}

/// What changed in a mailbox since a MODSEQ (RFC 7162), from one consistent snapshot: see
/// `Store::changes_since`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailboxChanges {
    pub uidvalidity: u32,
    pub uidnext: Uid,
    pub highestmodseq: ModSeq,
    /// Messages whose MODSEQ is above the given one (new messages and flag changes), in UID
    /// order.
    pub changed: Vec<MessageMeta>,
    /// UIDs expunged (or moved away) with a MODSEQ above the given one, ascending.
    pub vanished: Vec<Uid>,
}

/// Result of a conditional flag change (`Store::store_flags_if`, RFC 7162 UNCHANGEDSINCE).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlagsStored {
    /// Messages whose flags changed, with their new MODSEQs, in UID order.
    pub changed: Vec<MessageMeta>,
    /// UIDs left alone because their MODSEQ was above the UNCHANGEDSINCE value, ascending.
    pub modified: Vec<Uid>,
}

/// A message to append to a mailbox.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub blob: BlobId,
    pub size: u64,
    pub internal_date: i64,
    pub flags: Flags,
    pub keywords: Vec<String>,
    /// The body's cached derived data (see `Store::blob_info`), set with the message.
    pub info: Option<Vec<u8>>,
}

/// Result of an append or one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub mailbox: MailboxId,
    pub uidvalidity: u32,
    pub uid: Uid,
    pub modseq: ModSeq,
}

/// Result of `copy_messages` and `move_messages`: what RFC 4315 COPYUID reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResult {
    /// UIDVALIDITY of the target mailbox.
    pub uidvalidity: u32,
    /// Source UID to new UID in the target, in ascending source UID order; only for the source
    /// UIDs that existed. New UIDs ascend in the same order.
    pub mapping: Vec<(Uid, Uid)>,
}

/// Counters of one mailbox, as IMAP STATUS and SELECT report them; all from one snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: u32,
    /// Messages without `\Seen`.
    pub unseen: u32,
    /// Messages with `\Deleted`.
    pub deleted: u32,
    /// Sum of the message sizes in bytes (RFC 8438 STATUS SIZE).
    pub size: u64,
    pub uidnext: Uid,
    pub uidvalidity: u32,
    pub highestmodseq: ModSeq,
    /// Lowest UID without `\Seen` (SELECT's `[UNSEEN n]` wants its sequence number).
    pub first_unseen_uid: Option<Uid>,
    /// Messages that no session has claimed as `\Recent` yet (STATUS RECENT of IMAP4rev1);
    /// reading this does not claim them, see `Store::claim_recent`.
    pub recent: u32,
}

/// How `store_flags` combines the given flags with the present ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagMode {
    Replace,
    Add,
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagOp {
    pub mode: FlagMode,
    pub flags: Flags,
    pub keywords: Vec<String>,
}

/// One mailbox a delivered message goes into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTarget {
    pub account: AccountId,
    /// `None` delivers into the account's INBOX.
    pub mailbox: Option<MailboxId>,
    pub flags: Flags,
}

/// A body delivered to local mailboxes and/or queued for remote recipients, atomically.
#[derive(Debug, Clone)]
pub struct DeliveryBatch {
    pub blob: BlobId,
    pub size: u64,
    pub internal_date: i64,
    pub targets: Vec<DeliveryTarget>,
    /// Remote recipients of the same transaction (with a body of their own: queued mail
    /// carries no Return-Path).
    pub enqueue: Option<NewQueueEntry>,
    /// The body's cached derived data (see `Store::blob_info`), set with the deliveries.
    pub info: Option<Vec<u8>>,
}

/// Why a single delivery of a batch failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryFailure {
    OverQuota,
    NoSuchMailbox,
    NoSuchAccount,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    pub results: Vec<Result<Appended, DeliveryFailure>>,
    pub queued: Option<QueueId>,
}

/// Quota usage of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUsage {
    pub used_bytes: u64,
    pub used_messages: u64,
    pub limit_bytes: Option<u64>,
    /// Limit on the number of messages (RFC 9208 MESSAGE resource); `None` is unlimited.
    pub limit_messages: Option<u64>,
}

/// One recipient of a queued message, with its RFC 3461 parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRecipient {
    pub address: String,
    /// NOTIFY value as given (e.g. `SUCCESS,FAILURE`), if any.
    pub notify: Option<String>,
    /// ORCPT value as given (`rfc822;addr` in xtext), if any.
    pub orcpt: Option<String>,
}

/// A message handed to the outbound queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQueueEntry {
    /// Envelope sender; empty for the null sender `<>`.
    pub sender: String,
    pub recipients: Vec<QueueRecipient>,
    pub blob: BlobId,
    pub size: u64,
    /// RFC 3461 ENVID and RET.
    pub envid: Option<String>,
    pub ret: Option<String>,
    pub smtputf8: bool,
    pub body_8bit: bool,
}

/// Delivery state of one queued recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientStatus {
    Pending,
    Delivered,
    Failed,
}

impl RecipientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientStatus::Pending => "pending",
            RecipientStatus::Delivered => "delivered",
            RecipientStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<RecipientStatus> {
        Some(match s {
            "pending" => RecipientStatus::Pending,
            "delivered" => RecipientStatus::Delivered,
            "failed" => RecipientStatus::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRecipientState {
    pub recipient: QueueRecipient,
    pub status: RecipientStatus,
    pub last_reply: Option<String>,
}

/// A message in the outbound queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub id: QueueId,
    pub sender: String,
    pub recipients: Vec<QueueRecipientState>,
    pub blob: BlobId,
    pub size: u64,
    pub envid: Option<String>,
    pub ret: Option<String>,
    pub smtputf8: bool,
    pub body_8bit: bool,
    /// Unix seconds.
    pub created: i64,
    pub next_attempt: i64,
    pub attempts: u32,
}

/// A queue entry claimed for delivery by `Store::queue_claim`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueClaim {
    pub entry: QueueEntry,
    /// Proves the claim to `queue_renew` and `queue_update`.
    pub token: String,
    /// Unix seconds until which the lease holds unless renewed.
    pub lease_until: i64,
}

/// What one delivery attempt found out about one queued recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    /// The recipient's address exactly as queued.
    pub address: String,
    /// `Pending` when it is to be tried again.
    pub status: RecipientStatus,
    /// What the remote server said (or why it could not be reached), for the administrator.
    pub last_reply: Option<String>,
}

/// The result of one delivery attempt of a queue entry, for `Store::queue_update`.
#[derive(Debug, Clone)]
pub struct QueueUpdate {
    /// Recipients whose state changed; recipients not named stay as they are.
    pub outcomes: Vec<RecipientOutcome>,
    /// Attempts made so far, including this one.
    pub attempts: u32,
    /// When to try the still pending recipients again (unix seconds).
    pub next_attempt: i64,
    /// A delivery status notification to file in the same transaction: local copies and/or
    /// a queue entry, exactly as `Store::deliver` takes them.
    pub notification: Option<DeliveryBatch>,
}

/// What `Store::queue_update` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUpdated {
    /// No recipient is pending any more: the entry was removed.
    pub completed: bool,
    /// The outcome of the notification's delivery, when one was given.
    pub notification: Option<DeliveryOutcome>,
}

/// The signing algorithm of a DKIM key: the `k=` tag of its key record (RFC 6376 section
/// 3.6.1) and the `a=` tag of its signatures (RFC 6376 section 3.5, RFC 8463 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DkimAlgorithm {
    /// `ed25519-sha256` (RFC 8463).
    Ed25519,
    /// `rsa-sha256` (RFC 6376 section 3.3.1).
    Rsa,
}

impl DkimAlgorithm {
    /// The `k=` tag value: `ed25519` or `rsa`.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::Ed25519 => "ed25519",
            DkimAlgorithm::Rsa => "rsa",
        }
    }

    pub fn parse(s: &str) -> Option<DkimAlgorithm> {
        match s {
            "ed25519" => Some(DkimAlgorithm::Ed25519),
            "rsa" => Some(DkimAlgorithm::Rsa),
            _ => None,
        }
    }
}

/// One DKIM signing key of a local domain (RFC 6376). Its public half is published as a TXT
/// record at `<selector>._domainkey.<domain>`.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
    /// The selector (RFC 6376 section 3.1), unique within the domain.
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// The private key, PKCS#8 DER (RFC 5208 / RFC 5958).
    pub private_key: Vec<u8>,
    /// The public key as the `p=` tag carries it before base64: the 32 raw bytes for Ed25519
    /// (RFC 8463 section 4), the DER SubjectPublicKeyInfo for RSA (what RFC 6376's own example
    /// key and every common signer publish; verifiers accept it).
    pub public_key: Vec<u8>,
    /// When the key was generated, Unix seconds.
    pub created: i64,
}

/// Never prints the private key.
impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("private_key", &format_args!("<{} bytes>", self.private_key.len()))
            .field("public_key_len", &self.public_key.len())
            .field("created", &self.created)
            .finish()
    }
}

// ---- web: sessions, app passwords, password reset, API tokens ----

/// A signed-in web session, kept server-side. Only a hash of the session id (the cookie value)
/// is stored, so a copy of the database does not let anyone take over a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// Hash of the session id (lower-case hex).
    pub id_hash: String,
    pub account: AccountId,
    /// The synchronizer token every form and cookie-authenticated API call must carry.
    pub csrf_token: String,
    /// Unix seconds.
    pub created: i64,
    /// Last request seen (updated coarsely), Unix seconds.
    pub last_seen: i64,
    /// The session ends at this time whatever its use (absolute lifetime), Unix seconds.
    pub expires: i64,
}

/// What `create_app_password` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAppPassword {
    pub account: AccountId,
    /// The user's name for it, e.g. "Phone".
    pub label: String,
    /// The public part of the password that finds its row (unique per account), so a login
    /// verifies one hash rather than every app password of the account.
    pub lookup: String,
    /// PHC string (argon2id) of the whole password.
    pub hash: String,
}

/// A password for one device or program (IMAP, POP3, SMTP submission), never the web pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPassword {
    pub id: i64,
    pub account: AccountId,
    pub label: String,
    pub lookup: String,
    pub hash: String,
    /// Unix seconds.
    pub created: i64,
    /// Last successful login with it, Unix seconds.
    pub last_used: Option<i64>,
}

/// An administration API token (`postamt token create`). Only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Short public identifier, for listing and revoking.
    pub id: String,
    pub label: String,
    /// Hash of the secret token (lower-case hex).
    pub hash: String,
    /// Unix seconds.
    pub created: i64,
    pub last_used: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_id_is_written_as_the_hex_it_was_before() {
        let id = BlobId::of(b"hello");
        let hex = blake3::hash(b"hello").to_hex();
        assert_eq!(id.hex().as_str(), hex.as_str());
        assert_eq!(id.to_string(), hex.as_str());
        assert_eq!(BlobId::parse(&hex), Some(id.clone()));
        // The order of ids is the order of their hex text (listings sort by it).
        let other = BlobId::of(b"world");
        assert_eq!(id.cmp(&other), id.to_string().cmp(&other.to_string()));
    }

    #[test]
    fn blob_id_parse_refuses_what_is_not_lower_case_hex() {
        let hex = BlobId::of(b"x").to_string();
        assert!(BlobId::parse(&hex.to_uppercase()).is_none());
        assert!(BlobId::parse(&hex[..63]).is_none());
        assert!(BlobId::parse(&format!("{hex}0")).is_none());
        assert!(BlobId::parse(&format!("../{}", &hex[3..])).is_none());
        assert!(BlobId::parse(&"g".repeat(64)).is_none());
        assert!(BlobId::parse(&"é".repeat(32)).is_none());
    }
}
