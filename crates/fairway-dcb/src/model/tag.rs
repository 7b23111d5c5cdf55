//! Tags: `key:value` labels that place an event inside consistency boundaries.

use std::fmt;
use std::str::FromStr;

use crate::error::InvalidInput;
use crate::model::limits::{NameKind, check_name};

/// A validated `key:value` tag, e.g. `course:c42`.
///
/// The key must be non-empty, the value must be non-empty, and the whole tag at most
/// [`MAX_TAG_LEN`](crate::limits::MAX_TAG_LEN) bytes without whitespace or control
/// characters. The value may itself contain `:`.
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
        assert_eq!(rule("k:a b"), NameRule::ForbiddenChar(' '));
    }
}
