//! Tags: `key:value` labels that place an event inside consistency boundaries.

use std::fmt;
use std::str::FromStr;

use crate::error::InvalidInput;
use crate::model::limits::{NameKind, check_name};

/// A validated `key:value` tag, e.g. `course:c42`.
///
/// Tags are opaque strings, as in the DCB specification: any character is allowed except
/// control characters, so spaces, punctuation and any script are fine. The key (before the
/// first `:`) and the value (after it) must be non-empty, and the whole tag at most
/// [`MAX_TAG_LEN`](crate::limits::MAX_TAG_LEN) bytes (UTF-8). The value may itself contain
/// `:`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

impl Tag {
    /// Builds `key:value`, checking the rules.
    pub fn new(key: &str, value: impl fmt::Display) -> Result<Self, InvalidInput> {
        format!("{key}:{value}").parse()
    }

    /// Parses and checks a `key:value` text.
    pub fn parse(text: impl Into<String>) -> Result<Self, InvalidInput> {
        let text = text.into();
        check_name(NameKind::Tag, &text)?;
        Ok(Tag(text))
    }

    /// The whole tag text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `:`.
    pub fn key(&self) -> &str {
        self.0.split_once(':').map_or("", |(k, _)| k)
    }

    /// The part after the first `:`.
    pub fn value(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, v)| v)
    }

    /// Wraps already-checked text (stored data).
    pub(crate) fn from_stored(text: String) -> Self {
        Tag(text)
    }
}

impl FromStr for Tag {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tag::parse(s)
    }
}

impl TryFrom<&str> for Tag {
    type Error = InvalidInput;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Tag::parse(s)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.0)
    }
}

impl AsRef<str> for Tag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::NameRule;

    #[test]
    fn tags_split_at_the_first_colon() {
        let tag = Tag::new("url", "https://x").unwrap();
        assert_eq!(tag.key(), "url");
        assert_eq!(tag.value(), "https://x");
        assert_eq!(tag.as_str(), "url:https://x");
    }

    #[test]
    fn malformed_tags_are_rejected_with_their_rule() {
        let rule = |s: &str| match Tag::parse(s) {
            Err(InvalidInput::MalformedTag { rule, .. }) => rule,
            other => panic!("{s:?} gave {other:?}"),
        };
        assert_eq!(rule(""), NameRule::Empty);
        assert_eq!(rule("nocolon"), NameRule::MissingColon);
        assert_eq!(rule(":v"), NameRule::EmptyTagKey);
        assert_eq!(rule("k:"), NameRule::EmptyTagValue);
        assert_eq!(rule("k:a\nb"), NameRule::ControlChar('\n'));
        assert_eq!(rule("k:a\0"), NameRule::ControlChar('\0'));
    }

    #[test]
    fn tags_are_opaque_strings_without_control_characters() {
        let spaced = Tag::parse("student:Ada Lovelace").unwrap();
        assert_eq!((spaced.key(), spaced.value()), ("student", "Ada Lovelace"));
        let unicode = Tag::new("city", "Zürich – 東京").unwrap();
        assert_eq!(unicode.value(), "Zürich – 東京");
        let colons = Tag::parse("time:12:30:00").unwrap();
        assert_eq!((colons.key(), colons.value()), ("time", "12:30:00"));
        let spaced_key = Tag::parse("first name:Ada").unwrap();
        assert_eq!(spaced_key.key(), "first name");
        let err = Tag::parse("k:a\u{1b}[31m").unwrap_err();
        assert!(err.to_string().contains("control character"), "{err}");
        assert!(err.to_string().contains("U+001B"), "{err}");
    }
}
