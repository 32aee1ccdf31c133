//! A request body parsed once into a light JSON tree that borrows its strings from the body.
//!
//! Ingest reads every event this way instead of through `serde_json::Value`: a `Value`
//! object is an `IndexMap` (the workspace's serde_json keeps insertion order, which Cedar
//! needs), so each of an event's ~60 objects hashed every key and allocated every string, and
//! building and dropping those trees was the largest block of ingest's CPU. Here an object is
//! a vector of members and a string without escapes is a slice of the body. The tree is also a
//! [`serde::Deserializer`], so the typed facets are read from it directly.
//!
//! JSON syntax is still serde_json's: this module only chooses what the parsed values become.
//! Where `Value` defines a behaviour this tree keeps it, so that event ids and stored facets do
//! not change: a key given twice keeps its first place and its last value, and a number is a
//! `serde_json::Number` built exactly as `Value` builds it.

use serde::de::value::{MapAccessDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;

/// A JSON value whose strings borrow from the text it was parsed from where they can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

/// An object's members in the order received, each key once.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Object<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

/// The error of reading a typed value out of the tree (serde's plain message error).
pub(crate) type DeError = de::value::Error;

impl<'a> Json<'a> {
    /// Parses `body` (serde_json's syntax, limits and errors).
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }
}

impl<'a> Object<'a> {
    /// Takes the member `key` out, if present.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Json<'a>> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }

    /// The member `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether `key` is present and not `null`.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| !v.is_null())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Json<'a>)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    pub(crate) fn into_members(self) -> impl Iterator<Item = (Cow<'a, str>, Json<'a>)> {
        self.0.into_iter()
    }

    /// Members sorted by key (byte order), for the canonical form.
    pub(crate) fn sorted(&self) -> Vec<(&str, &Json<'a>)> {
        let mut entries: Vec<(&str, &Json<'a>)> = self.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entries
    }

    /// Collapses repeated keys as `Value` does: the first place, the last value.
    fn dedup(&mut self) {
        let members = &mut self.0;
        let n = members.len();
        // Nearly every object is small and has no repeats: checked pairwise, nothing allocated.
        if n <= 16 && !(1..n).any(|i| members[..i].iter().any(|(k, _)| *k == members[i].0)) {
            return;
        }
        let mut kept: Vec<(Cow<'a, str>, Json<'a>)> = Vec::with_capacity(n);
        let mut index: HashMap<Cow<'a, str>, usize> = HashMap::with_capacity(n);
        for (k, v) in members.drain(..) {
            match index.entry(k) {
                Entry::Occupied(e) => {
                    if let Some(slot) = kept.get_mut(*e.get()) {
                        slot.1 = v;
                    }
                }
                Entry::Vacant(e) => {
                    kept.push((e.key().clone(), v));
                    e.insert(kept.len() - 1);
                }
            }
        }
        *members = kept;
    }
}

/// A `Value` as a tree that borrows its strings (its objects already hold each key once).
impl<'a> From<&'a Value> for Json<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.clone()),
            Value::String(s) => Json::String(Cow::Borrowed(s)),
            Value::Array(a) => Json::Array(a.iter().map(Json::from).collect()),
            Value::Object(m) => {
                Json::Object(Object(m.iter().map(|(k, x)| (Cow::Borrowed(k.as_str()), Json::from(x))).collect()))
            }
        }
    }
}

// ---- parsing: serde_json drives these visitors ---------------------------------------------

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        Json::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Json<'de>, E> {
        // As `Value` does: a float JSON cannot carry is null.
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(x) = seq.next_element()? {
            items.push(x);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(k) = map.next_key_seed(KeySeed)? {
            members.push((k, map.next_value()?));
        }
        let mut object = Object(members);
        object.dedup();
        Ok(Json::Object(object))
    }
}

/// Reads a key as a slice of the body when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(s))
    }
    fn visit_str<E>(self, s: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(s))
    }
}

// ---- writing: the compact form, byte for byte what `Value` writes ---------------------------

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(x) => s.serialize_str(x),
            Json::Array(a) => s.collect_seq(a),
            Json::Object(o) => s.collect_map(o.iter()),
        }
    }
}

// ---- reading typed values out of the tree -----------------------------------------------------

impl<'de, 'b: 'de> Deserializer<'de> for &'de Json<'b> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self {
            Json::Null => v.visit_unit(),
            Json::Bool(b) => v.visit_bool(*b),
            Json::Number(n) => visit_number(n, v),
            Json::String(s) => v.visit_borrowed_str(s),
            Json::Array(a) => {
                let mut seq = SeqDeserializer::new(a.iter());
                let out = v.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            Json::Object(o) => {
                let mut map = MapDeserializer::new(o.iter());
                let out = v.visit_map(&mut map)?;
                map.end()?;
                Ok(out)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self {
            Json::Null => v.visit_none(),
            other => v.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, v: V) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    /// A unit variant is a string; a variant with content, an object of one member.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match self {
            Json::String(s) => v.visit_enum(de::value::BorrowedStrDeserializer::new(s)),
            Json::Object(o) if o.0.len() == 1 => {
                v.visit_enum(MapAccessDeserializer::new(MapDeserializer::new(o.iter())))
            }
            other => Err(de::Error::invalid_type(other.unexpected(), &"a string or an object of one member")),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

fn visit_number<'a, V: Visitor<'a>>(n: &Number, v: V) -> Result<V::Value, DeError> {
    if let Some(u) = n.as_u64() {
        v.visit_u64(u)
    } else if let Some(i) = n.as_i64() {
        v.visit_i64(i)
    } else {
        v.visit_f64(n.as_f64().unwrap_or(f64::NAN))
    }
}

impl Json<'_> {
    fn unexpected(&self) -> de::Unexpected<'_> {
        match self {
            Json::Null => de::Unexpected::Unit,
            Json::Bool(b) => de::Unexpected::Bool(*b),
            Json::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => de::Unexpected::Unsigned(u),
                (None, Some(i)) => de::Unexpected::Signed(i),
                _ => de::Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Json::String(s) => de::Unexpected::Str(s),
            Json::Array(_) => de::Unexpected::Seq,
            Json::Object(_) => de::Unexpected::Map,
        }
    }
}

impl<'a, 'b: 'a> IntoDeserializer<'a, DeError> for &'a Json<'b> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// JSON values of every kind, nested, with keys that repeat and strings that need escapes.
    pub(crate) fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-c\"\\\\\u{0}-\u{1f}é🦀]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-d]{0,2}", inner), 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Writes `v` as JSON text with its object members in `v`'s order, repeating keys when
    /// `repeat` is set (the first copy with a decoy value), so parsing must collapse them.
    fn text_with_repeats(v: &Value, repeat: bool) -> String {
        match v {
            Value::Array(a) => {
                format!("[{}]", a.iter().map(|x| text_with_repeats(x, repeat)).collect::<Vec<_>>().join(","))
            }
            Value::Object(m) => {
                let mut parts = Vec::new();
                for (k, x) in m {
                    let key = Value::String(k.clone()).to_string();
                    if repeat {
                        parts.push(format!("{key}:\"decoy\""));
                    }
                    parts.push(format!("{key}:{}", text_with_repeats(x, repeat)));
                }
                format!("{{{}}}", parts.join(","))
            }
            other => other.to_string(),
        }
    }

    proptest! {
        #[test]
        fn the_tree_writes_what_value_writes(v in arb_json(), repeat in any::<bool>()) {
            let text = text_with_repeats(&v, repeat);
            let value: Value = serde_json::from_str(&text).unwrap();
            let tree = Json::parse(text.as_bytes()).unwrap();
            prop_assert_eq!(serde_json::to_string(&tree).unwrap(), value.to_string());
        }

        #[test]
        fn typed_reads_from_the_tree_equal_reads_from_value(v in arb_json()) {
            let text = v.to_string();
            let tree = Json::parse(text.as_bytes()).unwrap();
            let from_tree = Value::deserialize(&tree).unwrap();
            prop_assert_eq!(from_tree, serde_json::from_str::<Value>(&text).unwrap());
        }
    }

    #[test]
    fn strings_without_escapes_borrow_from_the_body() {
        let body = br#"{"plain":"abc","escaped":"a\nb","k\u0065y":1}"#;
        let Json::Object(o) = Json::parse(body).unwrap() else { panic!() };
        assert!(matches!(o.get("plain"), Some(Json::String(Cow::Borrowed("abc")))));
        assert!(matches!(o.get("escaped"), Some(Json::String(Cow::Owned(s))) if s == "a\nb"));
        assert!(o.get("key").is_some());
    }

    #[test]
    fn a_repeated_key_keeps_its_first_place_and_last_value() {
        let Json::Object(o) = Json::parse(br#"{"a":1,"b":2,"a":3}"#).unwrap() else { panic!() };
        assert_eq!(serde_json::to_string(&Json::Object(o)).unwrap(), r#"{"a":3,"b":2}"#);
        let many: String =
            format!("{{{},\"k0\":\"last\"}}", (0..40).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(","));
        let text = serde_json::to_string(&Json::parse(many.as_bytes()).unwrap()).unwrap();
        assert!(text.starts_with(r#"{"k0":"last","k1":1,"k2":2,"#), "{text}");
        let value: Value = serde_json::from_str(&many).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    }

    #[test]
    fn typed_errors_name_the_unexpected_value() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct S {
            n: u32,
        }
        let tree = Json::parse(br#"{"n":"x"}"#).unwrap();
        let err = serde_path_to_error::deserialize::<_, S>(&tree).unwrap_err();
        assert_eq!(err.path().to_string(), "n");
        assert_eq!(err.into_inner().to_string(), r#"invalid type: string "x", expected u32"#);
        let missing = S::deserialize(&Json::parse(b"{}").unwrap()).unwrap_err();
        assert_eq!(missing.to_string(), "missing field `n`");
    }
}
