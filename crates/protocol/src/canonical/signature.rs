//! Thinking signatures and encrypted reasoning, and which upstream made them.
//!
//! An upstream only accepts back the signatures it issued. When a translated
//! answer carries one to a client, it is tagged with the provider that made
//! it (`sg1#<provider>#<value>`); when the client sends it back, the tag says
//! whether the upstream now chosen may have it. Untagged signatures came
//! through a pass-through, so only an upstream of the client's own dialect
//! can use them.

use std::borrow::Cow;

const TAG: &str = "sg1#";

/// A signature or encrypted blob, and the provider that issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The value as the upstream wrote it.
    pub value: String,
    /// The provider that issued it, when known.
    pub origin: Option<String>,
}

impl Signature {
    /// A signature issued by `origin`.
    pub fn from_upstream(value: impl Into<String>, origin: &str) -> Self {
        Self {
            value: value.into(),
            origin: Some(origin.to_owned()),
        }
    }

    /// Reads a signature a client sent back.
    pub fn from_client(text: &str) -> Self {
        if let Some(rest) = text.strip_prefix(TAG)
            && let Some((origin, value)) = rest.split_once('#')
            && !origin.is_empty()
        {
            return Self {
                value: value.to_owned(),
                origin: Some(origin.to_owned()),
            };
        }
        Self {
            value: text.to_owned(),
            origin: None,
        }
    }

    /// The form a client gets: tagged with its origin when it has one.
    pub fn to_client(&self) -> Cow<'_, str> {
        match &self.origin {
            Some(origin) => Cow::Owned(format!("{TAG}{origin}#{}", self.value)),
            None => Cow::Borrowed(&self.value),
        }
    }

    /// The value to send to `upstream`, if it may have it: only the
    /// provider that issued a signature can verify it.
    pub fn for_upstream(&self, upstream: &str) -> Option<&str> {
        (self.origin.as_deref() == Some(upstream)).then_some(self.value.as_str())
    }
}

/// Whether a request body carries a signature tagged for some provider; a
/// cheap check that lets pass-through skip parsing bodies that carry none.
pub fn body_has_tagged_signature(body: &[u8]) -> bool {
    memchr::memmem::find(body, TAG.as_bytes()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_gate_the_upstream() {
        let signature = Signature::from_upstream("EqQBCkgIAR", "claude-max");
        let client = signature.to_client();
        assert_eq!(client, "sg1#claude-max#EqQBCkgIAR");
        let back = Signature::from_client(&client);
        assert_eq!(back, signature);
        assert_eq!(back.for_upstream("claude-max"), Some("EqQBCkgIAR"));
        assert_eq!(back.for_upstream("gemini"), None);
        assert!(body_has_tagged_signature(client.as_bytes()));
    }

    #[test]
    fn untagged_signatures_have_no_origin() {
        let plain = Signature::from_client("EqQBCkgIAR#x");
        assert_eq!(plain.origin, None);
        assert_eq!(plain.to_client(), "EqQBCkgIAR#x");
        assert_eq!(plain.for_upstream("anything"), None);
        assert_eq!(Signature::from_client("sg1##x").origin, None);
    }
}
