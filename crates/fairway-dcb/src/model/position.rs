//! Positions: where an event sits in the log.

use std::fmt;
use std::str::FromStr;

use crate::error::InvalidInput;

/// Number of bytes of an encoded [`Position`].
pub const POSITION_LEN: usize = 12;

/// The place of an event in the log: totally ordered, the same type on every engine.
///
/// A position is shaped like a FoundationDB versionstamp followed by the index of the event
/// in its batch: `commit` (8 bytes) orders commits, `batch_order` (2 bytes) orders the
/// transactions committed together, `index` (2 bytes) orders the events of one append.
/// It encodes to 12 big-endian bytes whose byte order is the position order, and prints as
/// 24 lowercase hex digits, so printed positions also sort like positions.
/// Positions may have gaps; they never go backwards.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    commit: u64,
    batch_order: u16,
    index: u16,
}

impl Position {
    /// The smallest position: before every event.
    pub const ZERO: Position = Position { commit: 0, batch_order: 0, index: 0 };
    /// The largest position: after every event.
    pub const MAX: Position = Position { commit: u64::MAX, batch_order: u16::MAX, index: u16::MAX };

    /// Builds a position from its parts.
    pub const fn new(commit: u64, batch_order: u16, index: u16) -> Self {
        Position { commit, batch_order, index }
    }

    /// The commit version part.
    pub const fn commit(self) -> u64 {
        self.commit
    }

    /// The order of the transaction within its commit.
    pub const fn batch_order(self) -> u16 {
        self.batch_order
    }

    /// The index of the event within its append.
    pub const fn index(self) -> u16 {
        self.index
    }

    /// The 12-byte big-endian encoding; byte order equals position order.
    pub fn to_bytes(self) -> [u8; POSITION_LEN] {
        let mut out = [0u8; POSITION_LEN];
        out[..8].copy_from_slice(&self.commit.to_be_bytes());
        out[8..10].copy_from_slice(&self.batch_order.to_be_bytes());
        out[10..].copy_from_slice(&self.index.to_be_bytes());
        out
    }

    /// Decodes the 12-byte encoding made by [`Position::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; POSITION_LEN] = bytes.try_into().ok()?;
        Some(Position {
            commit: u64::from_be_bytes(bytes[..8].try_into().ok()?),
            batch_order: u16::from_be_bytes(bytes[8..10].try_into().ok()?),
            index: u16::from_be_bytes(bytes[10..].try_into().ok()?),
        })
    }

    /// The position right after this one (saturating at [`Position::MAX`]).
    pub fn next(self) -> Self {
        if self.index < u16::MAX {
            Position { index: self.index + 1, ..self }
        } else if self.batch_order < u16::MAX {
            Position { batch_order: self.batch_order + 1, index: 0, ..self }
        } else if self.commit < u64::MAX {
            Position { commit: self.commit + 1, batch_order: 0, index: 0 }
        } else {
            self
        }
    }

    /// The position right before this one (saturating at [`Position::ZERO`]).
    pub fn prev(self) -> Self {
        if self.index > 0 {
            Position { index: self.index - 1, ..self }
        } else if self.batch_order > 0 {
            Position { batch_order: self.batch_order - 1, index: u16::MAX, ..self }
        } else if self.commit > 0 {
            Position { commit: self.commit - 1, batch_order: u16::MAX, index: u16::MAX }
        } else {
            self
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:04x}{:04x}", self.commit, self.batch_order, self.index)
    }
}

impl fmt::Debug for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Position({self})")
    }
}

impl FromStr for Position {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidInput::MalformedPosition { value: s.chars().take(64).collect() };
        if s.len() != 2 * POSITION_LEN || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let commit = u64::from_str_radix(&s[..16], 16).map_err(|_| invalid())?;
        let batch_order = u16::from_str_radix(&s[16..20], 16).map_err(|_| invalid())?;
        let index = u16::from_str_radix(&s[20..], 16).map_err(|_| invalid())?;
        Ok(Position { commit, batch_order, index })
    }
}

/// A position travels in JSON (and any serde format) as its text: 24 hex digits.
impl serde::Serialize for Position {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Position {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(|err| serde::de::Error::custom(format!("position {text:?}: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_carries_the_text_form() {
        let position = Position::new(0x0102, 3, 4);
        let json = serde_json::to_string(&position).unwrap();
        assert_eq!(json, "\"000000000000010200030004\"");
        assert_eq!(serde_json::from_str::<Position>(&json).unwrap(), position);
        let bad = serde_json::from_str::<Position>("\"12\"").unwrap_err().to_string();
        assert!(bad.contains("12"), "the error names the value: {bad}");
    }

    #[test]
    fn display_parses_back_and_sorts_like_positions() {
        let a = Position::new(1, 2, 3);
        let b = Position::new(1, 2, 4);
        let c = Position::new(2, 0, 0);
        for p in [a, b, c, Position::ZERO, Position::MAX] {
            assert_eq!(p.to_string().parse::<Position>().unwrap(), p);
            assert_eq!(Position::from_bytes(&p.to_bytes()), Some(p));
        }
        assert!(a.to_string() < b.to_string() && b.to_string() < c.to_string());
        assert_eq!(a.next(), b);
        assert_eq!(b.prev(), a);
        assert_eq!(Position::new(1, u16::MAX, u16::MAX).next(), c);
        assert_eq!(c.prev(), Position::new(1, u16::MAX, u16::MAX));
    }

    #[test]
    fn malformed_positions_are_rejected() {
        for bad in ["", "xyz", "00000000000000010002000", "0000000000000001000200030"] {
            assert!(matches!(bad.parse::<Position>(), Err(InvalidInput::MalformedPosition { .. })), "{bad}");
        }
    }
}
