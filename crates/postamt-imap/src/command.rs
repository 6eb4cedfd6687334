//! The parsed form of IMAP client commands (RFC 9051 section 6 and the extensions postamt
//! serves). Produced by [`crate::parse`]; consumed by the session.
//!
//! Strings are kept as the client sent them, after removing quoting or literal framing:
//! mailbox names are not yet decoded from modified UTF-7 (that depends on whether the
//! client enabled IMAP4rev2 or UTF8=ACCEPT), and `INBOX` is not yet case-folded.

/// One tagged command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub tag: String,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    // Any state (RFC 9051 6.1, RFC 2971)
    Capability,
    Noop,
    Logout,
    /// ID with the client's field/value pairs, or `None` for `ID NIL`.
    Id(Option<Vec<(String, Option<String>)>>),

    // Not authenticated (RFC 9051 6.2, RFC 4959 SASL-IR)
    StartTls,
    /// `initial` is the SASL initial response as sent (base64, or `=` for empty).
    Authenticate {
        mechanism: String,
        initial: Option<String>,
    },
    Login {
        username: String,
        password: String,
    },

    // Authenticated (RFC 9051 6.3)
    Enable(Vec<String>),
    Select {
        mailbox: String,
        params: SelectParams,
    },
    Examine {
        mailbox: String,
        params: SelectParams,
    },
    /// CREATE with the RFC 6154 `USE (...)` parameter (attributes as sent, e.g. `\Sent`).
    Create {
        mailbox: String,
        special_use: Vec<String>,
    },
    Delete {
        mailbox: String,
    },
    Rename {
        from: String,
        to: String,
    },
    Subscribe {
        mailbox: String,
    },
    Unsubscribe {
        mailbox: String,
    },
    List(ListCommand),
    Lsub {
        reference: String,
        pattern: String,
    },
    Namespace,
    Status {
        mailbox: String,
        items: Vec<StatusItem>,
    },
    /// APPEND, with several messages for MULTIAPPEND (RFC 3502).
    Append {
        mailbox: String,
        messages: Vec<AppendMessage>,
    },
    Idle,
    /// GETMETADATA (RFC 5464 section 4.2); the mailbox `""` means the server.
    GetMetadata {
        mailbox: String,
        /// `MAXSIZE n` (section 4.2.1).
        maxsize: Option<u64>,
        depth: MetadataDepth,
        /// Entry names as sent (validated, compare case-insensitively).
        entries: Vec<String>,
    },
    /// SETMETADATA (RFC 5464 section 4.3): entries with a value, or `None` (NIL) to remove.
    SetMetadata {
        mailbox: String,
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    /// COMPRESS with the mechanism as sent (RFC 4978).
    Compress(String),
    /// GETQUOTA (RFC 9208 section 4.2) of a quota root.
    GetQuota(String),
    /// GETQUOTAROOT (RFC 9208 section 4.3) of a mailbox.
    GetQuotaRoot(String),
    /// SETQUOTA (RFC 9208 section 4.4): resource names (upper-cased) and limits.
    SetQuota {
        root: String,
        limits: Vec<(String, u64)>,
    },

    // Selected (RFC 9051 6.4)
    Check,
    Close,
    Unselect,
    Expunge,
    /// UID EXPUNGE (RFC 4315 / RFC 9051).
    UidExpunge(SequenceSet),
    Search(SearchCommand),
    Fetch {
        uid: bool,
        set: SequenceSet,
        items: Vec<FetchItem>,
        modifiers: FetchModifiers,
    },
    Store {
        uid: bool,
        set: SequenceSet,
        mode: StoreMode,
        silent: bool,
        flags: Vec<String>,
        /// The UNCHANGEDSINCE modifier (RFC 7162 section 3.1.3).
        unchanged_since: Option<u64>,
    },
    /// SORT and UID SORT (RFC 5256), with ESORT's RETURN options (RFC 5267).
    Sort(SortCommand),
    /// THREAD and UID THREAD (RFC 5256).
    Thread {
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: String,
        keys: Vec<SearchKey>,
    },
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: String,
    },
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: String,
    },
}

impl Command {
    /// The command's name as a client would write it, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capability => "CAPABILITY",
            Command::Noop => "NOOP",
            Command::Logout => "LOGOUT",
            Command::Id(_) => "ID",
            Command::StartTls => "STARTTLS",
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::Login { .. } => "LOGIN",
            Command::Enable(_) => "ENABLE",
            Command::Select { .. } => "SELECT",
            Command::Examine { .. } => "EXAMINE",
            Command::Create { .. } => "CREATE",
            Command::Delete { .. } => "DELETE",
            Command::Rename { .. } => "RENAME",
            Command::Subscribe { .. } => "SUBSCRIBE",
            Command::Unsubscribe { .. } => "UNSUBSCRIBE",
            Command::List(_) => "LIST",
            Command::Lsub { .. } => "LSUB",
            Command::Namespace => "NAMESPACE",
            Command::Status { .. } => "STATUS",
            Command::Append { .. } => "APPEND",
            Command::Idle => "IDLE",
            Command::Compress(_) => "COMPRESS",
            Command::GetMetadata { .. } => "GETMETADATA",
            Command::SetMetadata { .. } => "SETMETADATA",
            Command::GetQuota(_) => "GETQUOTA",
            Command::GetQuotaRoot(_) => "GETQUOTAROOT",
            Command::SetQuota { .. } => "SETQUOTA",
            Command::Sort(_) => "SORT",
            Command::Thread { .. } => "THREAD",
            Command::Check => "CHECK",
            Command::Close => "CLOSE",
            Command::Unselect => "UNSELECT",
            Command::Expunge => "EXPUNGE",
            Command::UidExpunge(_) => "UID EXPUNGE",
            Command::Search(_) => "SEARCH",
            Command::Fetch { .. } => "FETCH",
            Command::Store { .. } => "STORE",
            Command::Copy { .. } => "COPY",
            Command::Move { .. } => "MOVE",
        }
    }
}

/// SELECT/EXAMINE parameters (RFC 4466 `select-params`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SelectParams {
    /// `CONDSTORE` (RFC 7162 section 3.1.8).
    pub condstore: bool,
    /// `QRESYNC (...)` (RFC 7162 section 3.2.5).
    pub qresync: Option<Qresync>,
}

/// The QRESYNC select parameter: what the client knew when it last synchronised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uidvalidity: u32,
    pub modseq: u64,
    /// `known-uids`; without it the server assumes `1:<UIDNEXT - 1>`.
    pub known_uids: Option<SequenceSet>,
    /// `seq-match-data`: message numbers and the UIDs the client has for them.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// The DEPTH option of GETMETADATA (RFC 5464 section 4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetadataDepth {
    /// The entry itself (the default).
    #[default]
    Zero,
    /// And its children.
    One,
    /// And everything below it.
    Infinity,
}

/// FETCH modifiers (RFC 4466 section 2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchModifiers {
    /// `CHANGEDSINCE n` (RFC 7162 section 3.1.4.1).
    pub changed_since: Option<u64>,
    /// `VANISHED` (RFC 7162 section 3.2.6), UID FETCH only, with CHANGEDSINCE.
    pub vanished: bool,
}

/// SORT (RFC 5256 section 3) and its ESORT return options (RFC 5267).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortCommand {
    pub uid: bool,
    /// `RETURN (...)`: `None` for a plain SORT answered with `* SORT`.
    pub ret: Option<Vec<SearchReturn>>,
    pub criteria: Vec<SortCriterion>,
    pub charset: String,
    pub keys: Vec<SearchKey>,
}

/// One sort key, possibly reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

/// Sort keys of RFC 5256 and RFC 5957 (DISPLAYFROM, DISPLAYTO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

/// THREAD algorithms (RFC 5256 section 2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
}

/// A sequence number or UID in a set; `*` is the largest in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNum {
    Value(u32),
    Star,
}

/// `a`, `a:b` (either order, RFC 9051 section 9 `seq-range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    pub start: SeqNum,
    pub end: SeqNum,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceSet {
    Ranges(Vec<SeqRange>),
    /// `$`: the result saved by the last SEARCH with RETURN (SAVE) (RFC 5182).
    Saved,
}

/// LIST, with the LIST-EXTENDED (RFC 5258), SPECIAL-USE (RFC 6154) and LIST-STATUS
/// (RFC 5819) options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListCommand {
    pub reference: String,
    /// One or more patterns (`%` and `*` wildcards), as sent.
    pub patterns: Vec<String>,
    pub select: Vec<ListSelect>,
    pub ret: Vec<ListReturn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListSelect {
    Subscribed,
    RemoteOnly,
    RecursiveMatch,
    SpecialUse,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListReturn {
    Subscribed,
    Children,
    SpecialUse,
    Status(Vec<StatusItem>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    Recent,
    /// RFC 7162 section 3.1.7.
    HighestModSeq,
    /// RFC 9208 section 4.1.4: octets an EXPUNGE would free.
    DeletedStorage,
    /// RFC 8474 section 4.3.
    MailboxId,
}

/// One message of an APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    /// Flags as sent (`\Seen`, `$Forwarded`, ...).
    pub flags: Vec<String>,
    /// The date-time argument, as Unix seconds.
    pub date: Option<i64>,
    pub data: Vec<u8>,
    /// Sent as `literal8` (`~{n}`, RFC 3516), which may contain NUL.
    pub binary: bool,
    /// Sent as `UTF8 (~{n})` (RFC 6855 section 4): headers may be UTF-8.
    pub utf8: bool,
}

/// A calendar date of SEARCH (`1-Feb-1994`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCommand {
    pub uid: bool,
    /// `RETURN (...)` options (ESEARCH, RFC 4731 / RFC 9051); `None` when absent (a plain
    /// SEARCH), `Some(vec![])` for `RETURN ()`, which means ALL.
    pub ret: Option<Vec<SearchReturn>>,
    pub charset: Option<String>,
    /// The keys, implicitly ANDed.
    pub keys: Vec<SearchKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    Save,
}

/// Search keys of RFC 9051 section 6.4.4 (plus RFC 3501's NEW, OLD, RECENT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Bcc(String),
    Before(Date),
    Body(String),
    Cc(String),
    Deleted,
    Draft,
    Flagged,
    From(String),
    Header(String, String),
    Keyword(String),
    Larger(u64),
    New,
    Not(Box<SearchKey>),
    Old,
    On(Date),
    Or(Box<SearchKey>, Box<SearchKey>),
    Recent,
    Seen,
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Since(Date),
    Smaller(u64),
    Subject(String),
    Text(String),
    To(String),
    Uid(SequenceSet),
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unkeyword(String),
    Unseen,
    /// A bare sequence set (message numbers).
    Sequence(SequenceSet),
    /// A parenthesised list of keys, ANDed.
    And(Vec<SearchKey>),
    /// `MODSEQ [entry-name entry-type] n` (RFC 7162 section 3.1.5): MODSEQ at least `n`.
    /// postamt keeps one MODSEQ per message, so the entry name and type are ignored.
    ModSeq(u64),
    /// `EMAILID id` and `THREADID id` (RFC 8474 section 6).
    EmailId(String),
    ThreadId(String),
    /// `SAVEDBEFORE`, `SAVEDON`, `SAVEDSINCE` and `SAVEDATESUPPORTED` (RFC 8514 section 5).
    SavedBefore(Date),
    SavedOn(Date),
    SavedSince(Date),
    SaveDateSupported,
}

/// One FETCH data item; the macros ALL, FAST and FULL are expanded by the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    Flags,
    InternalDate,
    Rfc822Size,
    Envelope,
    /// `BODY` without a section: the non-extensible BODYSTRUCTURE.
    Body,
    BodyStructure,
    Uid,
    /// `RFC822` (= BODY[]), `RFC822.HEADER` (= BODY.PEEK[HEADER]), `RFC822.TEXT` (= BODY[TEXT]).
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    /// `BODY[section]<partial>` or `BODY.PEEK[...]`.
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<Partial>,
    },
    /// `BINARY[part]<partial>` / `BINARY.PEEK` (RFC 3516).
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<Partial>,
    },
    /// `BINARY.SIZE[part]` (RFC 3516).
    BinarySize {
        part: Vec<u32>,
    },
    /// `MODSEQ` (RFC 7162 section 3.1.4.2).
    ModSeq,
    /// `EMAILID` and `THREADID` (RFC 8474 section 5.3).
    EmailId,
    ThreadId,
    /// `SAVEDATE` (RFC 8514 section 4).
    SaveDate,
    /// `PREVIEW` with or without `(LAZY)` (RFC 8970).
    Preview {
        lazy: bool,
    },
}

/// `<offset.count>` of a partial fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    pub offset: u32,
    pub count: u32,
}

/// A body section: a part path (`1.2.3`, empty for the whole message) and what of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    /// Field names as sent (compare case-insensitively).
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    Mime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}
