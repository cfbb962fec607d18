//! Reading and editing the top level of a JSON object without re-serializing
//! it.
//!
//! A pass-through must send the client's body upstream as it came, with only
//! the edits the provider needs (the model name, a stream option). Parsing
//! into a tree and printing it again would reorder keys, change number
//! formatting and cost time, so this module finds the byte span of each
//! top-level member instead and splices new values in.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The top-level members of a JSON object, each with the span of its value.
#[derive(Debug)]
pub struct TopLevel<'a> {
    text: &'a str,
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

/// Why a body is not a JSON object.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotAnObject(String);

impl<'a> TopLevel<'a> {
    /// Reads the members of the object in `text`.
    ///
    /// Fails with `serde_json`'s message (line and column included) when the
    /// text is not JSON, or is JSON but not an object.
    pub fn parse(text: &'a str) -> Result<Self, NotAnObject> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let members = deserializer
            .deserialize_map(MembersVisitor)
            .and_then(|members| deserializer.end().map(|()| members))
            .map_err(|error| NotAnObject(error.to_string()))?;
        Ok(Self { text, members })
    }

    /// The raw value of the last member named `key` (JSON parsers keep the
    /// last of duplicate keys, and so does the upstream).
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| *value)
    }

    /// The byte span of every value named `key`, in document order.
    fn spans_of<'s>(&'s self, key: &'s str) -> impl Iterator<Item = Range<usize>> + 's {
        self.members
            .iter()
            .filter(move |(name, _)| name == key)
            .map(|(_, value)| self.span(value))
    }

    fn span(&self, value: &RawValue) -> Range<usize> {
        // `RawValue` borrows from `text`, so its address lies inside it.
        let start = value.get().as_ptr() as usize - self.text.as_ptr() as usize;
        start..start + value.get().len()
    }

    /// Returns the text with each `(key, raw_json)` edit applied: every
    /// member named `key` gets the value `raw_json`, and a key that is not
    /// there yet is added at the start of the object. Nothing else changes.
    ///
    /// `raw_json` must be valid JSON; callers build it with `serde_json`.
    pub fn with_members(&self, edits: &[(&str, &str)]) -> String {
        let extra: usize = edits
            .iter()
            .map(|(key, raw)| key.len() + raw.len() + 4)
            .sum();
        let mut replacements: Vec<(Range<usize>, &str)> = Vec::new();
        let mut added: Vec<(&str, &str)> = Vec::new();
        for &(key, raw) in edits {
            let before = replacements.len();
            replacements.extend(self.spans_of(key).map(|span| (span, raw)));
            if replacements.len() == before {
                added.push((key, raw));
            }
        }
        replacements.sort_by_key(|(span, _)| span.start);

        let mut out = String::with_capacity(self.text.len() + extra);
        let mut from = 0;
        if !added.is_empty() {
            let open = self.text.find('{').map_or(0, |at| at + 1);
            out.push_str(&self.text[..open]);
            for (index, (key, raw)) in added.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                push_json_string(&mut out, key);
                out.push(':');
                out.push_str(raw);
            }
            if !self.members.is_empty() {
                out.push(',');
            }
            from = open;
        }
        for (span, raw) in replacements {
            out.push_str(&self.text[from..span.start]);
            out.push_str(raw);
            from = span.end;
        }
        out.push_str(&self.text[from..]);
        out
    }
}

/// Appends `value` as a JSON string literal.
fn push_json_string(out: &mut String, value: &str) {
    // Serializing a `&str` cannot fail.
    out.push_str(&serde_json::to_string(value).unwrap_or_default());
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key::<CowStr<'de>>()? {
            members.push((key.0, map.next_value::<&'de RawValue>()?));
        }
        Ok(members)
    }
}

/// A key that borrows from the input unless it contains escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = CowStr<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(value)))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(value.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn replaces_a_value_and_keeps_everything_else_byte_for_byte() {
        let text = r#"{ "model" : "local/llama3",
  "messages":[{"role":"user","content":"hi"}], "x-unknown": 1.50e3 }"#;
        let top = TopLevel::parse(text).unwrap();
        assert_eq!(top.get("model").unwrap().get(), r#""local/llama3""#);
        assert_eq!(
            top.with_members(&[("model", r#""llama3""#)]),
            r#"{ "model" : "llama3",
  "messages":[{"role":"user","content":"hi"}], "x-unknown": 1.50e3 }"#
        );
    }

    #[test]
    fn adds_a_missing_member_first() {
        let top = TopLevel::parse(r#" {"stream":true}"#).unwrap();
        assert_eq!(
            top.with_members(&[("stream_options", r#"{"include_usage":true}"#)]),
            r#" {"stream_options":{"include_usage":true},"stream":true}"#
        );
        let empty = TopLevel::parse("{}").unwrap();
        assert_eq!(
            empty.with_members(&[("a", "1"), ("b", "2")]),
            r#"{"a":1,"b":2}"#
        );
    }

    #[test]
    fn several_edits_apply_in_document_order() {
        let top = TopLevel::parse(r#"{"b":1,"a":2,"c":3}"#).unwrap();
        assert_eq!(
            top.with_members(&[("a", "20"), ("b", "10"), ("d", "4")]),
            r#"{"d":4,"b":10,"a":20,"c":3}"#
        );
    }

    #[test]
    fn escaped_keys_are_found() {
        let top = TopLevel::parse(r#"{"mod\u0065l":"m"}"#).unwrap();
        assert_eq!(top.get("model").unwrap().get(), r#""m""#);
        assert_eq!(
            top.with_members(&[("model", r#""n""#)]),
            r#"{"mod\u0065l":"n"}"#
        );
    }

    #[test]
    fn duplicate_keys_are_all_rewritten_and_the_last_is_read() {
        let top = TopLevel::parse(r#"{"model":"a","model":"b"}"#).unwrap();
        assert_eq!(top.get("model").unwrap().get(), r#""b""#);
        assert_eq!(
            top.with_members(&[("model", r#""c""#)]),
            r#"{"model":"c","model":"c"}"#
        );
    }

    #[test]
    fn rejects_what_is_not_an_object() {
        for text in ["[1]", "\"s\"", "{", "{} trailing", "", "{\"a\":}"] {
            assert!(TopLevel::parse(text).is_err(), "{text}");
        }
    }
}
