//! The stored form of an event: a compact, versioned binary record.
//!
//! `version u8 | recorded_at micros u64 LE | type | tag count | tags | flags u8 | [id] |
//! [metadata] | payload (the rest)`, strings and byte fields prefixed by a LEB128 length.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::StorageError;
use crate::model::{RawEvent, Tag};

const FORMAT_V1: u8 = 1;
const HAS_ID: u8 = 1;
const HAS_METADATA: u8 = 2;

/// Bytes the record adds to an event's own fields, at most.
pub const RECORD_OVERHEAD: usize = 1 + 8 + 1 + 5 * (3 + crate::model::limits::MAX_TAGS_PER_EVENT);

/// Microseconds since the Unix epoch.
pub fn micros_since_epoch(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Encodes `event` recorded at `recorded_at`.
pub fn encode(event: &RawEvent, recorded_at_micros: u64) -> Vec<u8> {
    let fields = event.event_type.len()
        + event.tags.iter().map(|t| t.as_str().len() + 2).sum::<usize>()
        + event.id.as_ref().map_or(0, |i| i.len() + 2)
        + event.metadata.as_ref().map_or(0, |m| m.len() + 3)
        + event.payload.len();
    let mut out = Vec::with_capacity(16 + fields);
    out.push(FORMAT_V1);
    out.extend_from_slice(&recorded_at_micros.to_le_bytes());
    put_bytes(&mut out, event.event_type.as_bytes());
    put_len(&mut out, event.tags.len());
    for tag in &event.tags {
        put_bytes(&mut out, tag.as_str().as_bytes());
    }
    let flags = if event.id.is_some() { HAS_ID } else { 0 } | if event.metadata.is_some() { HAS_METADATA } else { 0 };
    out.push(flags);
    if let Some(id) = &event.id {
        put_bytes(&mut out, id.as_bytes());
    }
    if let Some(metadata) = &event.metadata {
        put_bytes(&mut out, metadata);
    }
    out.extend_from_slice(&event.payload);
    out
}

/// Decodes a record made by [`encode`], returning the event and its recording time.
pub fn decode(bytes: &[u8]) -> Result<(RawEvent, SystemTime), StorageError> {
    let mut reader = Reader { bytes, at: 0 };
    let version = reader.byte()?;
    if version != FORMAT_V1 {
        return Err(StorageError::Corrupt(format!("unknown event record format {version}")));
    }
    let micros = u64::from_le_bytes(reader.take(8)?.try_into().expect("8 bytes"));
    let event_type = reader.string()?;
    let tag_count = reader.len()?;
    let mut tags = Vec::with_capacity(tag_count.min(64));
    for _ in 0..tag_count {
        tags.push(Tag::from_stored(reader.string()?));
    }
    let flags = reader.byte()?;
    let id = if flags & HAS_ID != 0 { Some(reader.string()?) } else { None };
    let metadata = if flags & HAS_METADATA != 0 { Some(reader.bytes()?.to_vec()) } else { None };
    let payload = bytes[reader.at..].to_vec();
    let event = RawEvent { event_type, tags, payload, id, metadata };
    Ok((event, UNIX_EPOCH + Duration::from_micros(micros)))
}

fn put_len(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn corrupt(&self, what: &str) -> StorageError {
        StorageError::Corrupt(format!("event record truncated at byte {} reading {what}", self.at))
    }

    fn byte(&mut self) -> Result<u8, StorageError> {
        let byte = *self.bytes.get(self.at).ok_or_else(|| self.corrupt("a byte"))?;
        self.at += 1;
        Ok(byte)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| self.corrupt("a field"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn len(&mut self) -> Result<usize, StorageError> {
        let mut value = 0usize;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= ((byte & 0x7f) as usize) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.corrupt("a length"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], StorageError> {
        let len = self.len()?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, StorageError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| StorageError::Corrupt("event record holds invalid UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let event = RawEvent::new("Ty", b"payload".to_vec())
            .with_tag(Tag::parse("a:1").unwrap())
            .with_tag(Tag::parse("b:2").unwrap())
            .with_id("id-1")
            .with_metadata(b"meta".to_vec());
        let bytes = encode(&event, 1_700_000_000_123_456);
        let (back, at) = decode(&bytes).unwrap();
        assert_eq!(back, event);
        assert_eq!(micros_since_epoch(at), 1_700_000_000_123_456);
        let bare = RawEvent::new("T", Vec::new());
        assert_eq!(decode(&encode(&bare, 0)).unwrap().0, bare);
    }

    #[test]
    fn truncated_records_are_reported_not_panicked() {
        let event = RawEvent::new("Type", b"p".to_vec()).with_tag(Tag::parse("a:1").unwrap());
        let bytes = encode(&event, 5);
        for cut in 0..bytes.len() - 1 {
            assert!(decode(&bytes[..cut]).is_err() || cut >= bytes.len() - 1, "cut at {cut}");
        }
        assert!(matches!(decode(&[9]), Err(StorageError::Corrupt(_))));
    }
}
