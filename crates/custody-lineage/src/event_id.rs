use crate::json::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;

/// Identifies an event by its content: SHA-256 of its canonical JSON (object keys sorted,
/// no whitespace). The same event sent twice, even re-serialised, has the same id, which is
/// what makes ingest idempotent; the id also breaks ties between events of the same time,
/// so the tie-break never depends on arrival order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId([u8; 32]);

impl EventId {
    /// Wraps raw bytes (the server reading ids back from its store, generated graphs).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The id of a JSON value.
    pub fn of_json(value: &Value) -> Self {
        Self::of_tree(&Json::from(value))
    }

    /// The id of a parsed body: the same as [`EventId::of_json`] of the same value.
    pub(crate) fn of_tree(tree: &Json<'_>) -> Self {
        // Written out first and hashed in one call: feeding the hasher every comma and
        // quote separately cost more than the hashing.
        let mut text = Vec::with_capacity(4096);
        canonical_tree(tree, &mut text);
        Self(Sha256::digest(&text).into())
    }

    /// Lower-case hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the hex form.
    pub fn parse(s: &str) -> Result<Self, custody_core::CoreError> {
        let bad = || custody_core::CoreError::invalid("event_id", "expected 64 lower-case hex digits");
        if s.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).map_err(|_| bad())?;
            let byte = u8::from_str_radix(hex, 16).map_err(|_| bad())?;
            if let Some(slot) = out.get_mut(i) {
                *slot = byte;
            }
        }
        Ok(Self(out))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.to_hex())
    }
}

impl TryFrom<String> for EventId {
    type Error = custody_core::CoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> String {
        id.to_hex()
    }
}

/// Writes the canonical form of `v`. Written by hand rather than through
/// `serde_json::to_vec`, whose key order depends on a Cargo feature another crate may turn on.
/// Strings and numbers are written by serde_json's own serializer, byte for byte what
/// `Value::to_string` gives.
fn canonical_tree(v: &Json<'_>, out: &mut Vec<u8>) {
    match v {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(b) => out.extend_from_slice(if *b { b"true" as &[u8] } else { b"false" }),
        Json::Number(n) => write_json(n, out),
        Json::String(s) => write_json(s.as_ref(), out),
        Json::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_tree(x, out);
            }
            out.push(b']');
        }
        Json::Object(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.sorted().into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(k, out);
                out.push(b':');
                canonical_tree(x, out);
            }
            out.push(b'}');
        }
    }
}

/// Appends `v`'s compact JSON.
fn write_json<T: Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) {
    // Serializing a string or a number into a vector cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written form, as it was before strings were written into the hasher: ids
    /// already stored must not change.
    fn canonical_by_to_string(v: &Value) -> String {
        match v {
            Value::Array(a) => format!("[{}]", a.iter().map(canonical_by_to_string).collect::<Vec<_>>().join(",")),
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let parts: Vec<String> = keys
                    .into_iter()
                    .map(|k| format!("{}:{}", Value::String(k.clone()), canonical_by_to_string(&m[k])))
                    .collect();
                format!("{{{}}}", parts.join(","))
            }
            other => other.to_string(),
        }
    }

    #[test]
    fn ids_are_the_hash_of_the_canonical_text() {
        let v: Value = serde_json::from_str(
            r#"{"z":"\u00e9\"\\\n\t\u0001 é 🦀","a":{"y":[1,-2.5,1e300,12345678901234567890,null,false]},"\u0000k":"</script>"}"#,
        )
        .unwrap();
        let text = canonical_by_to_string(&v);
        assert!(
            text.starts_with(r#"{"\u0000k":"</script>","a":{"y":[1,-2.5,1e+300,12345678901234567890,null,false]}"#),
            "{text}"
        );
        let expected: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        assert_eq!(EventId::of_json(&v).as_bytes(), &expected);
    }

    proptest::proptest! {
        /// Ids already stored were computed from `Value`s: the tree must give the same.
        #[test]
        fn ids_are_the_hash_of_the_hand_written_canonical_text(v in crate::json::tests::arb_json()) {
            let expected: [u8; 32] = Sha256::digest(canonical_by_to_string(&v).as_bytes()).into();
            let text = v.to_string();
            let tree = Json::parse(text.as_bytes()).unwrap();
            proptest::prop_assert_eq!(*EventId::of_tree(&tree).as_bytes(), expected);
            proptest::prop_assert_eq!(*EventId::of_json(&v).as_bytes(), expected);
        }
    }

    #[test]
    fn repeated_keys_give_the_id_of_the_value_serde_json_keeps() {
        let text = r#"{"b":{"x":1,"x":[2]},"a":"v","b":{"y":null}}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(EventId::of_tree(&Json::parse(text.as_bytes()).unwrap()), EventId::of_json(&v));
    }

    #[test]
    fn canonical_form_ignores_key_order_and_round_trips() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":[true,null,"x\"y"]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{ "a" : [true, null, "x\"y"], "b" : 1 }"#).unwrap();
        assert_eq!(EventId::of_json(&a), EventId::of_json(&b));
        let id = EventId::of_json(&a);
        assert_eq!(EventId::parse(&id.to_hex()).unwrap(), id);
        assert!(EventId::parse("zz").is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<EventId>(&json).unwrap(), id);
    }
}
