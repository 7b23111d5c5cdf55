//! How request bodies are compared: by the SHA-256 of their canonical JSON.

use sha2::{Digest, Sha256};

/// The SHA-256 of a request body: of its canonical JSON if it is JSON, else of its bytes.
pub type BodyHash = [u8; 32];

/// The SHA-256 of `body`'s canonical JSON (object keys sorted, no insignificant
/// whitespace), or of its raw bytes when it is not JSON.
pub fn body_hash(body: &[u8]) -> BodyHash {
    let mut hasher = Sha256::new();
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => {
            let mut canonical = Vec::with_capacity(body.len());
            write_canonical(&value, &mut canonical);
            hasher.update(b"json\0");
            hasher.update(&canonical);
        }
        Err(_) => {
            hasher.update(b"raw\0");
            hasher.update(body);
        }
    }
    hasher.finalize().into()
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (n, (key, value)) in entries.into_iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key).expect("strings encode");
                out.push(b':');
                write_canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("scalars encode"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_hash_by_their_canonical_json() {
        let a = body_hash(br#"{"course_id":"go","capacity":3,"tags":[{"b":1,"a":2}]}"#);
        let b = body_hash(b" { \"tags\" : [ {\"a\":2, \"b\":1} ],\n \"capacity\": 3, \"course_id\": \"go\" } ");
        assert_eq!(a, b, "key order and whitespace do not matter");
        assert_ne!(a, body_hash(br#"{"course_id":"go","capacity":4,"tags":[{"b":1,"a":2}]}"#));
        assert_ne!(a, body_hash(br#"{"course_id":"go","capacity":3,"tags":[{"a":1,"b":2}]}"#));
        assert_ne!(body_hash(b"[1,2]"), body_hash(b"[2,1]"), "arrays keep their order");
        assert_eq!(body_hash(b"not json"), body_hash(b"not json"));
        assert_ne!(body_hash(b"not json"), body_hash(b"not json "), "raw bytes when not JSON");
    }
}
