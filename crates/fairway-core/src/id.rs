//! [`Id`]: an identifier taken from a request and checked when the request is decoded, so a
//! malformed one is a 400 naming the field, never a refusal of the domain or a panic.

use std::fmt;

use fairway_dcb::limits::MAX_TAG_LEN;
use fairway_dcb::{InvalidInput, NameRule, Tag};
use serde::{Deserialize, Serialize};

/// An identifier usable as the value of any tag whose key is at most [`Id::MAX_KEY_LEN`]
/// bytes: non-empty, at most [`Id::MAX_LEN`] bytes, no control character.
///
/// Use it for the id fields of commands and events: `serde` checks it while decoding the
/// request body (`course_id: must not be empty`), and [`Id::tag`] builds its tag without a
/// fallible step.
///
/// ```
/// use fairway_core::Id;
///
/// let id: Id = serde_json::from_str("\"c1\"").unwrap();
/// assert_eq!(id.tag("course").as_str(), "course:c1");
/// let err = serde_json::from_str::<Id>("\"\"").unwrap_err();
/// assert!(err.to_string().contains("must not be empty"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Id(String);

/// Why a text is not an [`Id`]: the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct BadId(#[from] pub NameRule);

impl Id {
    /// Longest tag key an id is guaranteed to fit under, in bytes.
    pub const MAX_KEY_LEN: usize = 32;
    /// Longest id, in bytes: `key:id` must fit a tag of
    /// [`MAX_TAG_LEN`] bytes.
    pub const MAX_LEN: usize = MAX_TAG_LEN - Self::MAX_KEY_LEN - 1;

    /// Checks `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, BadId> {
        let value = value.into();
        if value.is_empty() {
            return Err(NameRule::Empty.into());
        }
        if value.len() > Self::MAX_LEN {
            return Err(NameRule::TooLong { len: value.len(), limit: Self::MAX_LEN }.into());
        }
        // Checked as the value of a tag `k:<value>` (built without the formatting machinery:
        // every id of every decoded event passes here).
        let mut tag = String::with_capacity(2 + value.len());
        tag.push_str("k:");
        tag.push_str(&value);
        match Tag::parse(tag) {
            Ok(_) => Ok(Id(value)),
            Err(InvalidInput::MalformedTag { rule, .. }) => Err(rule.into()),
            Err(other) => unreachable!("a tag is refused only as malformed: {other}"),
        }
    }

    /// The tag `key:<id>`.
    ///
    /// # Panics
    /// If `key` is longer than [`Id::MAX_KEY_LEN`] bytes or is not a valid tag key: keys
    /// are literals of the program, not input.
    pub fn tag(&self, key: &str) -> Tag {
        assert!(key.len() <= Self::MAX_KEY_LEN, "tag key {key:?} is longer than {} bytes", Self::MAX_KEY_LEN);
        Tag::new(key, &self.0).unwrap_or_else(|err| panic!("tag key {key:?} is not valid: {err}"))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Id {
    type Error = BadId;

    fn try_from(value: String) -> Result<Self, BadId> {
        Id::new(value)
    }
}

impl From<Id> for String {
    fn from(id: Id) -> String {
        id.0
    }
}

impl From<&str> for Id {
    /// For tests and literals.
    ///
    /// # Panics
    /// If `value` is not a valid id.
    fn from(value: &str) -> Self {
        Id::new(value).unwrap_or_else(|err| panic!("{value:?} is not a valid id: {err}"))
    }
}

impl std::ops::Deref for Id {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_break_no_tag_rule_under_the_longest_key() {
        let longest = format!("{}{}", "é".repeat(Id::MAX_LEN / 2), "x".repeat(Id::MAX_LEN % 2));
        assert_eq!(longest.len(), Id::MAX_LEN);
        let id = Id::new(longest.clone()).unwrap();
        assert!(Tag::new(&"k".repeat(Id::MAX_KEY_LEN), &id).is_ok());
        let too_long = BadId(NameRule::TooLong { len: Id::MAX_LEN + 1, limit: Id::MAX_LEN });
        assert_eq!(Id::new(format!("{longest}x")).unwrap_err(), too_long);
        assert_eq!(Id::new("").unwrap_err(), BadId(NameRule::Empty));
        assert!(Id::new("a\nb").is_err());
        assert_eq!(Id::from("c1").tag("course").as_str(), "course:c1");
    }
}
