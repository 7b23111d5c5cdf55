//! Limits checked at the boundary, sized so FoundationDB's limits (100 kB per value,
//! 10 MB per transaction) are never reached by accident.

use crate::error::{InvalidInput, NameRule, clip};

/// Longest event type, in bytes.
pub const MAX_TYPE_LEN: usize = 256;
/// Longest tag (`key:value`), in bytes.
pub const MAX_TAG_LEN: usize = 256;
/// Longest event id, in bytes.
pub const MAX_EVENT_ID_LEN: usize = 128;
/// Longest namespace, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 64;
/// Most tags on one event.
pub const MAX_TAGS_PER_EVENT: usize = 32;
/// Largest payload of one event, in bytes (the stored event must fit one 100 kB value).
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Largest metadata of one event, in bytes.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;
/// Most events in one append.
pub const MAX_EVENTS_PER_APPEND: usize = 10_000;
/// Most bytes (keys and values, indexes included) one append may write: well under
/// FoundationDB's 10 MB transaction limit.
pub const MAX_APPEND_BYTES: usize = 8 * 1024 * 1024;
/// Most items in one query.
pub const MAX_QUERY_ITEMS: usize = 64;
/// Most types or tags in one query item.
pub const MAX_ITEM_TERMS: usize = 64;
/// Most conditions checked by one append.
pub const MAX_CONDITIONS: usize = 16;

/// Which kind of name is checked, to report the right error.
#[derive(Clone, Copy)]
pub(crate) enum NameKind {
    Type,
    Tag,
    EventId,
    Namespace,
}

impl NameKind {
    fn limit(self) -> usize {
        match self {
            NameKind::Type => MAX_TYPE_LEN,
            NameKind::Tag => MAX_TAG_LEN,
            NameKind::EventId => MAX_EVENT_ID_LEN,
            NameKind::Namespace => MAX_NAMESPACE_LEN,
        }
    }

    fn error(self, value: &str, rule: NameRule) -> InvalidInput {
        let value = clip(value);
        match self {
            NameKind::Type => InvalidInput::MalformedType { value, rule },
            NameKind::Tag => InvalidInput::MalformedTag { value, rule },
            NameKind::EventId => InvalidInput::MalformedEventId { value, rule },
            NameKind::Namespace => InvalidInput::MalformedNamespace { value, rule },
        }
    }
}

/// Checks a name: non-empty, within its length limit, no control characters or whitespace
/// (namespaces: only `[A-Za-z0-9_.-]`).
pub(crate) fn check_name(kind: NameKind, value: &str) -> Result<(), InvalidInput> {
    if value.is_empty() {
        return Err(kind.error(value, NameRule::Empty));
    }
    if value.len() > kind.limit() {
        return Err(kind.error(value, NameRule::TooLong { len: value.len(), limit: kind.limit() }));
    }
    let forbidden = |c: char| match kind {
        NameKind::Namespace => !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')),
        _ => c.is_control() || c.is_whitespace(),
    };
    if let Some(c) = value.chars().find(|&c| forbidden(c)) {
        return Err(kind.error(value, NameRule::ForbiddenChar(c)));
    }
    if let NameKind::Tag = kind {
        match value.split_once(':') {
            None => return Err(kind.error(value, NameRule::MissingColon)),
            Some(("", _)) => return Err(kind.error(value, NameRule::EmptyTagKey)),
            Some((_, "")) => return Err(kind.error(value, NameRule::EmptyTagValue)),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Checks an event type.
pub(crate) fn check_type(value: &str) -> Result<(), InvalidInput> {
    check_name(NameKind::Type, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_their_rules() {
        assert!(check_type("CourseDefined").is_ok());
        assert!(check_type("course.defined/v2").is_ok());
        assert!(matches!(check_type(""), Err(InvalidInput::MalformedType { rule: NameRule::Empty, .. })));
        assert!(matches!(
            check_type(&"x".repeat(MAX_TYPE_LEN + 1)),
            Err(InvalidInput::MalformedType { rule: NameRule::TooLong { len: 257, limit: 256 }, .. })
        ));
        assert!(matches!(
            check_type("a b"),
            Err(InvalidInput::MalformedType { rule: NameRule::ForbiddenChar(' '), .. })
        ));
        assert!(matches!(
            check_name(NameKind::Namespace, "ns/1"),
            Err(InvalidInput::MalformedNamespace { rule: NameRule::ForbiddenChar('/'), .. })
        ));
        assert!(check_name(NameKind::Namespace, "test-1.a_b").is_ok());
    }
}
