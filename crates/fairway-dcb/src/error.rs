//! Errors of the event store.

use crate::model::Position;

/// Everything an event store operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An append condition matched an event stored after its `after` position.
    #[error("append condition {condition} failed: event at position {position} matches its query")]
    ConditionFailed {
        /// Index of the failed condition in the append request.
        condition: usize,
        /// Position of the first event that made the condition fail.
        position: Position,
    },
    /// Some, but not all, events of a batch carry ids that are already stored.
    #[error("event id {id:?} is already stored at position {position}, but the rest of the batch is new")]
    PartialDuplicate {
        /// The id already stored.
        id: String,
        /// Where it is stored.
        position: Position,
    },
    /// The append's [`Receipt`](crate::Receipt) key already holds a standing value (the
    /// request was answered before): nothing was written.
    #[error("the receipt's key already holds a standing value; nothing was written")]
    ReceiptStands {
        /// The value standing at the key.
        value: Vec<u8>,
    },
    /// The request broke a rule or a limit; nothing was written.
    #[error("invalid input: {0}")]
    InvalidInput(#[from] InvalidInput),
    /// The storage engine failed.
    #[error("storage error: {0}")]
    Storage(StorageError),
    /// The store was closed.
    #[error("the event store is closed")]
    Closed,
}

/// Result type of the event store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A rule or limit that a request broke. Every variant names the rule and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// `append` was called with no events.
    #[error("an append needs at least one event")]
    EmptyBatch,
    /// The batch holds more events than allowed.
    #[error("batch holds {count} events; the limit is {limit}")]
    TooManyEvents {
        /// Events in the batch.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The batch would write more bytes than allowed in one transaction.
    #[error("batch would write {bytes} bytes; the limit is {limit} bytes per append")]
    BatchTooLarge {
        /// Estimated bytes written.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// An event payload is larger than allowed.
    #[error("event {index}: payload of {bytes} bytes; the limit is {limit} bytes")]
    PayloadTooLarge {
        /// Index of the event in the batch.
        index: usize,
        /// Payload size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// An event's metadata is larger than allowed.
    #[error("event {index}: metadata of {bytes} bytes; the limit is {limit} bytes")]
    MetadataTooLarge {
        /// Index of the event in the batch.
        index: usize,
        /// Metadata size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// An event has more tags than allowed.
    #[error("event {index}: {count} tags; the limit is {limit} tags per event")]
    TooManyTags {
        /// Index of the event in the batch.
        index: usize,
        /// Tags on the event.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// An event type is empty, too long or holds a forbidden character.
    #[error("event type {value:?}: {rule}")]
    MalformedType {
        /// The offending type (truncated to 64 characters).
        value: String,
        /// The rule it breaks.
        rule: NameRule,
    },
    /// A tag is not `key:value`, a part is empty, it is too long or it holds a control
    /// character (every other character is allowed).
    #[error("tag {value:?}: {rule}")]
    MalformedTag {
        /// The offending tag (truncated to 64 characters).
        value: String,
        /// The rule it breaks.
        rule: NameRule,
    },
    /// An event id is empty, too long or holds a forbidden character.
    #[error("event id {value:?}: {rule}")]
    MalformedEventId {
        /// The offending id (truncated to 64 characters).
        value: String,
        /// The rule it breaks.
        rule: NameRule,
    },
    /// Two events of one batch carry the same id.
    #[error("event id {id:?} appears twice in the batch")]
    DuplicateIdInBatch {
        /// The repeated id.
        id: String,
    },
    /// A namespace is empty, too long or holds a character outside `[A-Za-z0-9_.-]`.
    #[error("namespace {value:?}: {rule}")]
    MalformedNamespace {
        /// The offending namespace (truncated to 64 characters).
        value: String,
        /// The rule it breaks.
        rule: NameRule,
    },
    /// A position string is not 24 hex digits.
    #[error("position {value:?} is not 24 hexadecimal digits")]
    MalformedPosition {
        /// The offending text (truncated to 64 characters).
        value: String,
    },
    /// A query has no items; use `Query::all()` to match every event.
    #[error("a query needs at least one item (use Query::all() to match every event)")]
    EmptyQuery,
    /// A query has more items than allowed.
    #[error("query has {count} items; the limit is {limit}")]
    TooManyQueryItems {
        /// Items in the query.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A query item lists more types or tags than allowed.
    #[error("query item {item} lists {count} {what}; the limit is {limit}")]
    QueryItemTooLarge {
        /// Index of the item.
        item: usize,
        /// What is counted (`types` or `tags`).
        what: &'static str,
        /// How many are listed.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// An append lists more conditions than allowed.
    #[error("append has {count} conditions; the limit is {limit}")]
    TooManyConditions {
        /// Conditions in the request.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A receipt written with an append breaks a rule (see [`Receipt`](crate::Receipt)).
    #[error("append receipt: {rule}")]
    MalformedReceipt {
        /// The rule it breaks, with the offending figure.
        rule: String,
    },
}

/// Why a name (type, tag, id, namespace) was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameRule {
    /// It is empty.
    #[error("must not be empty")]
    Empty,
    /// It is longer than the limit.
    #[error("is {len} bytes long; the limit is {limit} bytes")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// It holds a control character (refused in every name).
    #[error("holds the control character {:?} (U+{:04X}); control characters are not allowed", .0, u32::from(*.0))]
    ControlChar(char),
    /// It holds a character its kind refuses: whitespace in a type or an event id, anything
    /// outside `[A-Za-z0-9_.-]` in a namespace.
    #[error("holds the forbidden character {0:?}")]
    ForbiddenChar(char),
    /// A tag has no `:` between key and value.
    #[error("must have the form key:value")]
    MissingColon,
    /// A tag's key (before the `:`) is empty.
    #[error("the key before ':' must not be empty")]
    EmptyTagKey,
    /// A tag's value (after the `:`) is empty.
    #[error("the value after ':' must not be empty")]
    EmptyTagValue,
}

/// A failure of the storage engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// Every attempt the engine allows ([`crate::RetryPolicy::max_attempts`]) failed with a
    /// retryable error: a conflict, or a cluster too busy or moving.
    #[error("transaction gave up after {attempts} attempts (the retry policy's limit): {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last retryable failure.
        last: String,
    },
    /// A retryable failure inside one transaction attempt (conflict, too old, ...).
    #[error("retryable: {0}")]
    Retryable(String),
    /// The store cannot be reached (e.g. the FoundationDB cluster does not answer).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The engine's files or I/O failed.
    #[error("engine: {0}")]
    Engine(String),
    /// Stored bytes could not be decoded.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The engine was closed.
    #[error("the storage engine is closed")]
    Closed,
    /// Writes are refused because the disk holding the data directory is full. Reads keep
    /// working, nothing acknowledged is lost, and writes resume by themselves once `needed`
    /// bytes are free again.
    #[error(
        "disk full: the filesystem at {} holding the data directory {} has {} free; writes are \
         refused until {} are free again (reads keep working, nothing acknowledged is lost)",
        .filesystem.display(), .dir.display(), human_bytes(*.available), human_bytes(*.needed)
    )]
    DiskFull {
        /// The store's data directory.
        dir: std::path::PathBuf,
        /// Where the filesystem holding `dir` is mounted.
        filesystem: std::path::PathBuf,
        /// Bytes free for the store when last measured.
        available: u64,
        /// Bytes that must be free for writes to resume (the engine's space reserve).
        needed: u64,
    },
    /// The store cannot be opened: its filesystem lacks the space its files need up front.
    /// Nothing was left behind.
    #[error(
        "not enough disk space to open the store in {}: it needs {} free on the filesystem at {} \
         ({what}) but only {} are free",
        .dir.display(), human_bytes(*.needed), .filesystem.display(), human_bytes(*.available)
    )]
    NotEnoughSpace {
        /// The store's data directory.
        dir: std::path::PathBuf,
        /// Where the filesystem holding `dir` is mounted.
        filesystem: std::path::PathBuf,
        /// Bytes free for the store.
        available: u64,
        /// Bytes the store needs free to open.
        needed: u64,
        /// What the needed bytes are for, e.g. `64 MiB journal + 16 MiB reserve`.
        what: String,
    },
    /// Another process holds the embedded store in this directory (an app or the `fairway`
    /// tool): the store admits one process at a time.
    #[error(
        "the data directory {} is in use by another process (a running app, or the `fairway` tool, \
         holds its store): stop that process, or choose another directory",
        .dir.display()
    )]
    Locked {
        /// The store's data directory.
        dir: std::path::PathBuf,
    },
    /// Every attempt of a transaction ran past the engine's time limit for one attempt
    /// (FoundationDB's 5 s): the store is overloaded, or the transaction reads or writes
    /// too much for one attempt. Whether a commit among them landed is not known.
    #[error(
        "the transaction ran past the store's limit of {limit_ms} ms per attempt in each of its {attempts} attempts: the store is overloaded or the transaction does too much for one attempt"
    )]
    TimedOut {
        /// Attempts that timed out.
        attempts: u32,
        /// The limit of one attempt, in milliseconds.
        limit_ms: u32,
    },
    /// A FoundationDB error code, with its message.
    #[error("foundationdb error {code}: {message}")]
    Fdb {
        /// The FoundationDB error code.
        code: i32,
        /// Its description.
        message: String,
    },
}

/// FoundationDB errors that say the cluster was busy or moving, not that the request was
/// wrong: too old (1007), future version (1009), not committed (1020), unknown result
/// (1021), timed out (1031), process behind (1037), tag throttled (1213).
const TRANSIENT_FDB_CODES: [i32; 7] = [1007, 1009, 1020, 1021, 1031, 1037, 1213];

impl StorageError {
    /// Wraps any engine error.
    pub fn engine(err: impl std::fmt::Display) -> Self {
        StorageError::Engine(err.to_string())
    }

    /// Whether the failure says the store was busy or out of reach rather than anything
    /// about the request: the same request may succeed later (a server answers 503).
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::RetriesExhausted { .. }
            | StorageError::Retryable(_)
            | StorageError::Unavailable(_)
            | StorageError::TimedOut { .. } => true,
            StorageError::Fdb { code, .. } => TRANSIENT_FDB_CODES.contains(code),
            _ => false,
        }
    }
}

impl From<StorageError> for Error {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Closed => Error::Closed,
            other => Error::Storage(other),
        }
    }
}

impl crate::kv::TxError for Error {
    fn as_storage(&self) -> Option<&StorageError> {
        match self {
            Error::Storage(err) => Some(err),
            _ => None,
        }
    }
}

/// A byte count for people: `512 bytes`, `12.5 KiB`, `64 MiB`, `1.2 GiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let tenths = (value * 10.0).round() / 10.0;
    if tenths.fract() == 0.0 || tenths >= 100.0 {
        format!("{tenths:.0} {}", UNITS[unit])
    } else {
        format!("{tenths:.1} {}", UNITS[unit])
    }
}

/// Truncates user text for error messages.
pub(crate) fn clip(value: &str) -> String {
    value.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn byte_counts_read_as_people_write_them() {
        assert_eq!(human_bytes(0), "0 bytes");
        assert_eq!(human_bytes(1023), "1023 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes((64 << 20) - 1), "64 MiB");
        assert_eq!(human_bytes(81 * (1 << 20) + 300 * 1024), "81.3 MiB");
        assert_eq!(human_bytes(3 << 30), "3 GiB");
    }
}
