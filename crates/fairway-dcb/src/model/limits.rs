//! Limits checked at the boundary, sized so FoundationDB's limits (100 kB per value,
//! 10 MB per transaction) are never reached by accident.

use crate::error::{InvalidInput, NameRule, clip};

// ANCHOR: limits
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
/// Most bytes one append's transaction may count, as FoundationDB counts them against its
/// 10 MB transaction limit: keys and values written (indexes included), write conflict
/// ranges (of versionstamped keys too) and read conflict ranges (id lookups, conditions).
pub const MAX_APPEND_BYTES: usize = 8 * 1024 * 1024;
/// Longest key of an append's receipt, in bytes (FoundationDB refuses keys over 10 kB).
pub const MAX_RECEIPT_KEY_BYTES: usize = 2048;
/// Most items in one query.
pub const MAX_QUERY_ITEMS: usize = 64;
/// Most types or tags in one query item.
pub const MAX_ITEM_TERMS: usize = 64;
/// Most conditions checked by one append.
pub const MAX_CONDITIONS: usize = 16;
// ANCHOR_END: limits

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

/// Checks a name: non-empty and within its length limit, and
/// - tags: any character except control characters (the DCB specification treats tags as
///   opaque strings: spaces, punctuation and any script are fine), in the form `key:value`
///   with both parts non-empty;
/// - types and event ids: no control characters and no whitespace;
/// - namespaces: only `[A-Za-z0-9_.-]`.
///
/// Refusing control characters keeps `0x00` out of every name, which the key layout uses as
/// the terminator of index prefixes.
pub(crate) fn check_name(kind: NameKind, value: &str) -> Result<(), InvalidInput> {
    if value.is_empty() {
        return Err(kind.error(value, NameRule::Empty));
    }
    if value.len() > kind.limit() {
        return Err(kind.error(value, NameRule::TooLong { len: value.len(), limit: kind.limit() }));
    }
    let rule = |c: char| match kind {
        NameKind::Namespace if !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) => {
            Some(NameRule::ForbiddenChar(c))
        }
        NameKind::Namespace => None,
        _ if c.is_control() => Some(NameRule::ControlChar(c)),
        NameKind::Type | NameKind::EventId if c.is_whitespace() => Some(NameRule::ForbiddenChar(c)),
        _ => None,
    };
    if let Some(rule) = value.chars().find_map(rule) {
        return Err(kind.error(value, rule));
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
        assert!(matches!(
            check_type("a\u{7}b"),
            Err(InvalidInput::MalformedType { rule: NameRule::ControlChar('\u{7}'), .. })
        ));
    }

    #[test]
    fn tags_allow_every_character_but_control_characters() {
        for tag in
            ["name:Ada Lovelace", "city:São Paulo", "title:東京 タワー", "url:https://x/y?z=1", "k: v ", "k:\u{a0}"]
        {
            assert!(check_name(NameKind::Tag, tag).is_ok(), "{tag:?} is refused");
        }
        for control in ['\0', '\t', '\n', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}'] {
            let tag = format!("k:a{control}b");
            assert!(
                matches!(
                    check_name(NameKind::Tag, &tag),
                    Err(InvalidInput::MalformedTag { rule: NameRule::ControlChar(c), .. }) if c == control
                ),
                "{tag:?} is accepted"
            );
        }
    }

    #[test]
    fn the_tag_length_limit_counts_bytes_and_is_named() {
        let longest = format!("k:{}", "é".repeat((MAX_TAG_LEN - 2) / 2));
        assert_eq!(longest.len(), MAX_TAG_LEN);
        assert!(check_name(NameKind::Tag, &longest).is_ok());
        let err = check_name(NameKind::Tag, &format!("{longest} ")).unwrap_err();
        assert!(matches!(err, InvalidInput::MalformedTag { rule: NameRule::TooLong { len: 257, limit: 256 }, .. }));
        assert!(err.to_string().contains("the limit is 256 bytes"), "{err}");
    }
}
