//! A borrowed view of a JWT part's JSON, for check 10's hot path. An object is read once into
//! its members' names and raw text (`serde_json::value::RawValue`), borrowed from the decoded
//! bytes; a member is read further only when a rule asks for it. No JSON tree is built, so a
//! passing token costs no allocation per claim. Building a `serde_json::Value` (a map per
//! object, a string per key and value) is left to error messages and `ssp-sim jwt --decode`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::jwt::shorten;

/// A JSON object's members in the order sent, each name with its value's raw text.
pub struct Object<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Object<'a> {
    /// Reads `bytes` as one JSON object (and nothing after it).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// An object with no members.
    pub fn empty() -> Self {
        Object(Vec::new())
    }

    /// The member called `name`; of duplicates the last, as `serde_json::Map` keeps it.
    pub fn get(&self, name: &str) -> Option<Json<'a>> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// The members' names, in the order sent (duplicates too).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_ref())
    }
}

impl<'de> Deserialize<'de> for Object<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Object<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((Text(name), raw)) = map.next_entry::<Text, &RawValue>()? {
                    members.push((name, Json(raw)));
                }
                Ok(Object(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// A string, borrowed unless it holds escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// One JSON value as sent, read as a rule needs it.
#[derive(Clone, Copy)]
pub struct Json<'a>(&'a RawValue);

impl<'a> Json<'a> {
    /// The value's first byte says its type: serde_json has validated the text.
    fn first(self) -> u8 {
        self.0.get().as_bytes().first().copied().unwrap_or(b'n')
    }

    /// Whether the value is `null`.
    pub fn is_null(self) -> bool {
        self.first() == b'n'
    }

    /// Whether the value is a string.
    pub fn is_string(self) -> bool {
        self.first() == b'"'
    }

    /// Whether the value is an object.
    pub fn is_object(self) -> bool {
        self.first() == b'{'
    }

    /// Whether the value is an array.
    pub fn is_array(self) -> bool {
        self.first() == b'['
    }

    /// The string, when the value is one.
    pub fn as_str(self) -> Option<Cow<'a, str>> {
        if !self.is_string() {
            return None;
        }
        serde_json::from_str::<Text>(self.0.get()).ok().map(|t| t.0)
    }

    /// The non-empty string, when the value is one.
    pub fn text(self) -> Option<Cow<'a, str>> {
        self.as_str().filter(|s| !s.is_empty())
    }

    /// The integer, when the value is one that fits an `i64` (as `Value::as_i64` reads it).
    pub fn as_i64(self) -> Option<i64> {
        if !matches!(self.first(), b'-' | b'0'..=b'9') {
            return None;
        }
        serde_json::from_str(self.0.get()).ok()
    }

    /// The object, when the value is one.
    pub fn object(self) -> Option<Object<'a>> {
        if !self.is_object() {
            return None;
        }
        serde_json::from_str(self.0.get()).ok()
    }

    /// The items, when the value is an array.
    pub fn array(self) -> Option<Vec<Json<'a>>> {
        if !self.is_array() {
            return None;
        }
        let items: Vec<&RawValue> = serde_json::from_str(self.0.get()).ok()?;
        Some(items.into_iter().map(Json).collect())
    }

    /// The value as compact JSON, shortened for a message.
    pub fn shown(self) -> String {
        shorten(&self.tree().to_string())
    }

    /// The value's type and (shortened) text, for messages: `string "jwt"`, `null`.
    pub fn describe(self) -> String {
        describe(&self.tree())
    }

    /// The value as a tree: only for messages, which quote it as `Value` prints it.
    fn tree(self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

/// A JSON value's type and (shortened) text, for messages.
pub fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".to_owned(),
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    format!("{kind} {}", shorten(&value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_borrowed_and_the_last_duplicate_wins() {
        let o = Object::parse(br#"{"a": "x", "b\u0041": 1, "a": "y", "n": null}"#).unwrap();
        assert!(matches!(
            o.get("a").unwrap().as_str(),
            Some(Cow::Borrowed("y"))
        ));
        assert_eq!(o.get("bA").unwrap().as_i64(), Some(1));
        assert!(o.get("n").unwrap().is_null());
        assert!(o.get("z").is_none());
        assert_eq!(o.names().collect::<Vec<_>>(), ["a", "bA", "a", "n"]);
    }

    #[test]
    fn values_read_as_serde_json_reads_them() {
        let o = Object::parse(
            br#"{"f": 1.0, "big": 18446744073709551615, "s": "a\"b", "l": [1, "x"], "o": {"k": []}}"#,
        )
        .unwrap();
        assert_eq!(o.get("f").unwrap().as_i64(), None);
        assert_eq!(o.get("big").unwrap().as_i64(), None);
        assert_eq!(o.get("s").unwrap().as_str().as_deref(), Some("a\"b"));
        assert_eq!(o.get("l").unwrap().array().unwrap().len(), 2);
        assert!(o
            .get("o")
            .unwrap()
            .object()
            .unwrap()
            .get("k")
            .unwrap()
            .is_array());
        assert_eq!(o.get("f").unwrap().describe(), "number 1.0");
        assert!(Object::parse(b"[1]").is_err());
        assert!(Object::parse(b"{} x").is_err());
    }
}
