//! A borrowed view of a JWT part's JSON, for check 10's hot path. The part is read once into
//! a tree whose strings borrow from the decoded bytes (`serde_json_borrow`: an object is a
//! list of members, a string is copied only when it holds escapes), and the rules walk that
//! tree. Building a `serde_json::Value` (a map per object, a string per key and value) is left
//! to error messages and `ssp-sim jwt --decode`.
//!
//! (An earlier view kept each member's raw text and parsed it again when a rule read it: each
//! byte of a nested claim was then scanned once per level of nesting, and check 10 cost about
//! twice what it does on one tree.)

use std::borrow::Cow;

use serde_json::Value;
use serde_json_borrow::{ObjectAsVec, Value as Borrowed};

use super::jwt::shorten;

/// One JWT part read as JSON: the tree the views below borrow from.
pub struct Document<'a>(Borrowed<'a>);

impl<'a> Document<'a> {
    /// Reads `bytes` as one JSON value (and nothing after it).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes).map(Document)
    }

    /// The value as read.
    pub fn root(&self) -> Json<'_> {
        Json(&self.0)
    }
}

/// A JSON object's members in the order sent; `None` is the empty object.
#[derive(Clone, Copy)]
pub struct Object<'a>(Option<&'a ObjectAsVec<'a>>);

impl<'a> Object<'a> {
    /// An object with no members.
    pub fn empty() -> Self {
        Object(None)
    }

    /// The member called `name`; of duplicates the last, as `serde_json::Map` keeps it.
    pub fn get(self, name: &str) -> Option<Json<'a>> {
        self.0?
            .as_vec()
            .iter()
            .rev()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| Json(v))
    }

    /// The members' names, in the order sent (duplicates too).
    pub fn names(self) -> impl Iterator<Item = &'a str> {
        self.0
            .into_iter()
            .flat_map(|o| o.as_vec().iter().map(|(n, _)| &**n))
    }
}

/// One JSON value as sent, read as a rule needs it.
#[derive(Clone, Copy)]
pub struct Json<'a>(&'a Borrowed<'a>);

impl<'a> Json<'a> {
    /// Whether the value is `null`.
    pub fn is_null(self) -> bool {
        self.0.is_null()
    }

    /// Whether the value is a string.
    pub fn is_string(self) -> bool {
        self.0.is_string()
    }

    /// Whether the value is an object.
    pub fn is_object(self) -> bool {
        self.0.is_object()
    }

    /// Whether the value is an array.
    pub fn is_array(self) -> bool {
        self.0.is_array()
    }

    /// The string, when the value is one.
    pub fn as_str(self) -> Option<Cow<'a, str>> {
        match self.0 {
            Borrowed::Str(text) => Some(Cow::Borrowed(&**text)),
            _ => None,
        }
    }

    /// The non-empty string, when the value is one.
    pub fn text(self) -> Option<Cow<'a, str>> {
        self.as_str().filter(|s| !s.is_empty())
    }

    /// The integer, when the value is one that fits an `i64` (as `Value::as_i64` reads it).
    pub fn as_i64(self) -> Option<i64> {
        self.0.as_i64()
    }

    /// The object, when the value is one.
    pub fn object(self) -> Option<Object<'a>> {
        self.0.as_object().map(|o| Object(Some(o)))
    }

    /// The items, when the value is an array.
    pub fn array(self) -> Option<Vec<Json<'a>>> {
        Some(self.0.as_array()?.iter().map(Json).collect())
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
        Value::from(self.0)
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
        let d = Document::parse(br#"{"a": "x", "b\u0041": 1, "a": "y", "n": null}"#).unwrap();
        let o = d.root().object().unwrap();
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
        let d = Document::parse(
            br#"{"f": 1.0, "big": 18446744073709551615, "s": "a\"b", "l": [1, "x"], "o": {"k": []}}"#,
        )
        .unwrap();
        let o = d.root().object().unwrap();
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
        assert!(Document::parse(b"[1]").unwrap().root().object().is_none());
        assert!(Document::parse(b"{} x").is_err());
    }
}
