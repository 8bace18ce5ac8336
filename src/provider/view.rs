//! A borrowed view of a JWT part's JSON, for check 10's hot path. The part is read once by
//! `simd-json` into a tape: a flat list of nodes in document order, whose strings borrow from
//! the part's bytes (unescaped in place). An object is its members' nodes one after another,
//! so reading a claim is a scan, and nothing is allocated per object, array or string. The
//! rules walk that tape. Building a `serde_json::Value` is left to error messages and
//! `ssp-sim jwt --decode`.
//!
//! (Earlier views kept each member's raw text and parsed it again per level of nesting, then
//! built a `serde_json_borrow` tree, a list per object. Under callgrind the tape reads a token's
//! two parts in 15,500 instructions, where the tree took 27,300.)
//!
//! `simd-json` must accept exactly what `serde_json` accepts, as the rules and their messages
//! were written against it: big integers read as floats (`big-int-as-float`), nesting stops at
//! `serde_json`'s depth, `-0` is a float, and a part either refuses has `serde_json`'s
//! message. The tests below hold the two parsers equal on generated and edge-case input.

use std::borrow::Cow;
use std::cell::RefCell;

use serde::de::Error as _;
use serde_json::{Number, Value};
use simd_json::{Buffers, Node, StaticNode, Tape};

use super::jwt::shorten;

/// How many nested arrays and objects `serde_json` reads: it refuses the 128th level.
const SERDE_JSON_DEPTH: usize = 127;

thread_local! {
    /// `simd-json`'s working buffers, kept per thread so each part does not allocate them.
    static BUFFERS: RefCell<Buffers> =
        RefCell::new(Buffers::with_max_depth(4096, SERDE_JSON_DEPTH));
}

/// The most a [`Scratch`] buffer keeps from one part to the next, so that one huge token does
/// not hold its memory for the thread's life.
const KEEP: usize = 64 * 1024;

/// What reading a part needs, kept between requests so that reading one allocates nothing:
/// the padded copy the tape's strings borrow from (unescaped in place), and the tape's nodes.
#[derive(Default)]
pub struct Scratch {
    work: Vec<u8>,
    nodes: Vec<Node<'static>>,
}

/// One JWT part read as JSON: the tape the views below borrow from. Dropped, it hands the
/// tape's nodes back to the [`Scratch`] it was read with.
pub struct Document<'a> {
    tape: Tape<'a>,
    home: &'a mut Vec<Node<'static>>,
}

impl Drop for Document<'_> {
    fn drop(&mut self) {
        *self.home = std::mem::replace(&mut self.tape, Tape(Vec::new()))
            .reset()
            .0;
    }
}

/// Lets go of `buffer`'s memory if it holds more than [`KEEP`] bytes.
fn trim<T>(buffer: &mut Vec<T>) {
    if buffer.capacity() * size_of::<T>() > KEEP {
        *buffer = Vec::new();
    }
}

impl<'a> Document<'a> {
    /// Reads `json` as one JSON value (and nothing after it), in `scratch`; `json` stays as
    /// sent, for the error message.
    pub fn parse(json: &[u8], scratch: &'a mut Scratch) -> Result<Self, serde_json::Error> {
        let rewritten;
        let json = if memchr::memmem::find(json, b"-0").is_some() {
            rewritten = as_serde_json_reads(json)?;
            &rewritten[..]
        } else {
            json
        };
        let Scratch { work, nodes } = scratch;
        trim(work);
        trim(nodes);
        work.clear();
        work.reserve(json.len() + simd_json::INPUT_PADDING);
        work.extend_from_slice(json);
        work.resize(json.len() + simd_json::INPUT_PADDING, b' ');
        let mut tape = Tape(std::mem::take(nodes)).reset();
        let parsed = BUFFERS.with_borrow_mut(|buffers| {
            simd_json::fill_tape_padded(work, json.len(), buffers, &mut tape)
        });
        let document = Document { tape, home: nodes };
        match parsed {
            Ok(()) => Ok(document),
            // `serde_json` says what is wrong; should it ever accept what `simd-json` refused,
            // the part is still refused, with `simd-json`'s reason.
            Err(refused) => Err(serde_json::from_slice::<Value>(json)
                .err()
                .unwrap_or_else(|| serde_json::Error::custom(refused))),
        }
    }

    /// The value as read.
    pub fn root(&self) -> Json<'_> {
        Json(&self.tape.0)
    }
}

/// `json` as `serde_json` reads it, written out again. The one reading `simd-json` does not
/// share: `-0`, which `serde_json` reads as the float -0.0 and `simd-json` as the integer 0
/// (so `"exp": -0` would pass as a time). Members stay in order, duplicates too.
fn as_serde_json_reads(json: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(json.len() + 8);
    let mut reader = serde_json::Deserializer::from_slice(json);
    let written =
        serde_transcode::transcode(&mut reader, &mut serde_json::Serializer::new(&mut out))
            .and_then(|()| reader.end());
    match written {
        Ok(()) => Ok(out),
        // The message `serde_json` gives when it reads the part itself.
        Err(e) => Err(serde_json::from_slice::<Value>(json).err().unwrap_or(e)),
    }
}

/// The number of tape nodes a value takes, itself included.
fn size(node: &Node) -> usize {
    match node {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        Node::String(_) | Node::Static(_) => 1,
    }
}

/// A JSON object's members in the order sent; empty for the empty object.
#[derive(Clone, Copy)]
pub struct Object<'a> {
    /// The members' nodes, name and value after name.
    members: &'a [Node<'a>],
}

impl<'a> Object<'a> {
    /// An object with no members.
    pub fn empty() -> Self {
        Object { members: &[] }
    }

    /// The members, in the order sent (duplicates too).
    fn iter(self) -> impl Iterator<Item = (&'a str, Json<'a>)> {
        let mut rest = self.members;
        std::iter::from_fn(move || {
            let (Node::String(name), after) = rest.split_first()? else {
                return None;
            };
            let (value, next) = after.split_at(size(after.first()?));
            rest = next;
            Some((*name, Json(value)))
        })
    }

    /// The member called `name`; of duplicates the last, as `serde_json::Map` keeps it.
    pub fn get(self, name: &str) -> Option<Json<'a>> {
        self.iter()
            .filter(|(n, _)| *n == name)
            .last()
            .map(|(_, v)| v)
    }

    /// The members called `names`, found in one pass over the object; of duplicates the last,
    /// as [`Object::get`] finds them.
    pub fn pick<const N: usize>(self, names: [&str; N]) -> [Option<Json<'a>>; N] {
        let mut found = [None; N];
        for (name, value) in self.iter() {
            if let Some(at) = names.iter().position(|n| *n == name) {
                found[at] = Some(value);
            }
        }
        found
    }

    /// The members' names, in the order sent (duplicates too).
    pub fn names(self) -> impl Iterator<Item = &'a str> {
        self.iter().map(|(name, _)| name)
    }
}

/// One JSON value as sent, read as a rule needs it: its node and those nested in it.
#[derive(Clone, Copy)]
pub struct Json<'a>(&'a [Node<'a>]);

impl<'a> Json<'a> {
    fn node(self) -> &'a Node<'a> {
        &self.0[0]
    }

    /// Whether the value is `null`.
    pub fn is_null(self) -> bool {
        matches!(self.node(), Node::Static(StaticNode::Null))
    }

    /// Whether the value is a string.
    pub fn is_string(self) -> bool {
        matches!(self.node(), Node::String(_))
    }

    /// Whether the value is an object.
    pub fn is_object(self) -> bool {
        matches!(self.node(), Node::Object { .. })
    }

    /// Whether the value is an array.
    pub fn is_array(self) -> bool {
        matches!(self.node(), Node::Array { .. })
    }

    /// The string, when the value is one.
    pub fn as_str(self) -> Option<Cow<'a, str>> {
        match self.node() {
            Node::String(text) => Some(Cow::Borrowed(text)),
            _ => None,
        }
    }

    /// The non-empty string, when the value is one.
    pub fn text(self) -> Option<Cow<'a, str>> {
        self.as_str().filter(|s| !s.is_empty())
    }

    /// The integer, when the value is one that fits an `i64` (as `Value::as_i64` reads it).
    pub fn as_i64(self) -> Option<i64> {
        match *self.node() {
            Node::Static(StaticNode::I64(n)) => Some(n),
            Node::Static(StaticNode::U64(n)) => i64::try_from(n).ok(),
            _ => None,
        }
    }

    /// The object, when the value is one.
    pub fn object(self) -> Option<Object<'a>> {
        self.is_object().then(|| Object {
            members: &self.0[1..],
        })
    }

    /// The items, when the value is an array.
    pub fn array(self) -> Option<Items<'a>> {
        let &Node::Array { len, .. } = self.node() else {
            return None;
        };
        Some(Items {
            rest: &self.0[1..],
            left: len,
        })
    }

    /// The value as compact JSON, shortened for a message.
    pub fn shown(self) -> String {
        shorten(&self.tree().to_string())
    }

    /// The value's type and (shortened) text, for messages: `string "jwt"`, `null`.
    pub fn describe(self) -> String {
        describe(&self.tree())
    }

    /// The value as a tree: for messages, which quote it as `Value` prints it, and for the
    /// tests that hold the view equal to `serde_json`.
    fn tree(self) -> Value {
        match *self.node() {
            Node::String(text) => Value::String(text.to_owned()),
            Node::Static(StaticNode::Null) => Value::Null,
            Node::Static(StaticNode::Bool(b)) => Value::Bool(b),
            Node::Static(StaticNode::I64(n)) => Value::from(n),
            Node::Static(StaticNode::U64(n)) => Value::from(n),
            Node::Static(StaticNode::F64(n)) => {
                Number::from_f64(n).map_or(Value::Null, Value::Number)
            }
            Node::Array { .. } => {
                Value::Array(self.array().into_iter().flatten().map(Json::tree).collect())
            }
            Node::Object { .. } => Value::Object(
                self.object()
                    .map(|o| o.iter().map(|(n, v)| (n.to_owned(), v.tree())).collect())
                    .unwrap_or_default(),
            ),
        }
    }
}

/// An array's items, in the order sent; read from the tape as they are asked for.
#[derive(Clone, Default)]
pub struct Items<'a> {
    /// The nodes from the next item on (and whatever follows the array).
    rest: &'a [Node<'a>],
    left: usize,
}

impl<'a> Iterator for Items<'a> {
    type Item = Json<'a>;

    fn next(&mut self) -> Option<Json<'a>> {
        self.left = self.left.checked_sub(1)?;
        let (item, rest) = self.rest.split_at(size(self.rest.first()?));
        self.rest = rest;
        Some(Json(item))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Items<'_> {}

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
    use proptest::prelude::*;

    /// What the view makes of `text`, and what `serde_json` makes of it, as trees.
    fn both(text: &[u8]) -> (Result<Value, String>, Result<Value, String>) {
        let mut work = Scratch::default();
        let view = Document::parse(text, &mut work)
            .map(|d| rounded(d.root().tree()))
            .map_err(|e| e.to_string());
        let serde = serde_json::from_slice::<Value>(text)
            .map(rounded)
            .map_err(|e| e.to_string());
        (view, serde)
    }

    /// `value` with its floats to 14 significant digits: `serde_json`'s default float reading
    /// may be a last digit off the exact one `simd-json` gives, which only messages show.
    fn rounded(value: Value) -> Value {
        match value {
            Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or_default();
                Value::from(format!("{f:.13e}").parse::<f64>().unwrap_or(f))
            }
            Value::Array(items) => Value::Array(items.into_iter().map(rounded).collect()),
            Value::Object(members) => {
                Value::Object(members.into_iter().map(|(k, v)| (k, rounded(v))).collect())
            }
            other => other,
        }
    }

    fn agree(text: &[u8]) {
        let (view, serde) = both(text);
        assert_eq!(view, serde, "on {:?}", String::from_utf8_lossy(text));
    }

    #[test]
    fn a_huge_part_does_not_keep_its_buffers_past_the_next() {
        let huge = format!("[{}1]", "1,".repeat(50_000));
        let mut scratch = Scratch::default();
        drop(Document::parse(huge.as_bytes(), &mut scratch).unwrap());
        assert!(
            scratch.work.capacity() > KEEP && scratch.nodes.capacity() * size_of::<Node>() > KEEP
        );
        let small = Document::parse(b"{}", &mut scratch).unwrap();
        assert!(small.root().is_object());
        drop(small);
        assert!(scratch.work.capacity() <= KEEP);
        assert!(scratch.nodes.capacity() * size_of::<Node>() <= KEEP);
    }

    #[test]
    fn members_are_borrowed_and_the_last_duplicate_wins() {
        let mut work = Scratch::default();
        let d = Document::parse(
            br#"{"a": "x", "b\u0041": 1, "a": "y", "n": null}"#,
            &mut work,
        )
        .unwrap();
        let o = d.root().object().unwrap();
        assert!(matches!(
            o.get("a").unwrap().as_str(),
            Some(Cow::Borrowed("y"))
        ));
        assert_eq!(o.get("bA").unwrap().as_i64(), Some(1));
        assert!(o.get("n").unwrap().is_null());
        assert!(o.get("z").is_none());
        assert_eq!(o.names().collect::<Vec<_>>(), ["a", "bA", "a", "n"]);
        let [a, z, n] = o.pick(["a", "z", "n"]);
        assert_eq!(a.and_then(Json::as_str).as_deref(), Some("y"));
        assert!(z.is_none());
        assert!(n.is_some_and(Json::is_null));
    }

    #[test]
    fn values_read_as_serde_json_reads_them() {
        let mut work = Scratch::default();
        let d = Document::parse(
            br#"{"f": 1.0, "big": 18446744073709551615, "s": "a\"b", "l": [1, "x"], "o": {"k": []}}"#,
            &mut work,
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
        let mut work = Scratch::default();
        assert!(Document::parse(b"[1]", &mut work)
            .unwrap()
            .root()
            .object()
            .is_none());
    }

    /// The inputs where JSON parsers are known to differ: each is read as `serde_json` reads
    /// it, or refused with its message.
    #[test]
    fn the_edges_are_read_as_serde_json_reads_them() {
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        for text in [
            "",
            " ",
            "{}",
            "{} x",
            "{}}",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "-0",
            "-0.0",
            "1.",
            ".5",
            "1e",
            "1e400",
            "-1e400",
            "1E+2",
            "2.5e-3",
            "NaN",
            "Infinity",
            "-",
            "--1",
            "+1",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "9223372036854775808",
            "123456789012345678901234567890",
            "0.1",
            "1.7976931348623157e308",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud83d\\ude00\"",
            "\"\\u00e9\"",
            "\"\\x41\"",
            "\"\\/\"",
            "\"a\u{1}b\"",
            "\"tab\there\"",
            "\"\u{7f}\"",
            "\"é\"",
            "\u{feff}{}",
            "true",
            "tru",
            "nul",
            "null x",
            "[true, false, null]",
            "{\"a\" 1}",
            "{1: 2}",
            "{\"a\":}",
            "[\"a\" \"b\"]",
            "\"unterminated",
            "\"\\\"",
            "[",
            "]",
            "{\"a\":{\"b\":{}}}",
            "\t\n\r {} \t\n\r",
            "\u{b}{}",
            "{}\u{0}",
        ] {
            agree(text.as_bytes());
        }
        for n in [126, 127, 128, 129, 130, 600] {
            agree(deep(n).as_bytes());
            agree(format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n)).as_bytes());
        }
        agree(&[b'"', 0xff, b'"']);
        agree(&[b'"', 0xc3, b'"']);
        agree(b"\"\xed\xa0\x80\"");
    }

    /// JSON-like text from JSON's own tokens and a few that are not, in any order.
    fn jsonish() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just(",".to_owned()),
            Just(":".to_owned()),
            Just(" ".to_owned()),
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("\"k\"".to_owned()),
            Just("\"\\u0041\\n\"".to_owned()),
            Just("\"".to_owned()),
            Just("\\".to_owned()),
            "-?[0-9]{1,22}(\\.[0-9]{1,5})?([eE][-+]?[0-9]{1,3})?",
            "\"[ -~é\u{1}]{0,8}\"",
        ];
        prop::collection::vec(token, 1..24).prop_map(|t| t.concat())
    }

    /// JSON values as `serde_json` writes them, nested.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(|f| Value::from((f * 1000.0).round() / 1000.0)),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-z\"\\\\]{0,4}", inner), 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn generated_text_is_read_as_serde_json_reads_it(text in jsonish()) {
            let (view, serde) = both(text.as_bytes());
            prop_assert_eq!(view, serde, "on {:?}", text);
        }

        #[test]
        fn generated_values_are_read_as_serde_json_reads_them(value in json_value()) {
            let text = value.to_string();
            let (view, serde) = both(text.as_bytes());
            prop_assert_eq!(&view, &serde);
            prop_assert_eq!(view, Ok(rounded(value)));
        }
    }
}
