//! What this provider adds around [`subgate_protocol::kiro`]: the login's
//! profile ARN and the model id in the request, the catalog's input limit
//! in the stream reading, the size limit, and the memory of truncated
//! answers (§5.7): an answer Kiro cut off is remembered, and the next
//! request of that conversation tells the model once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use subgate_protocol::canonical::{Aggregator, Dropped, Invalid, Request, Response};
use subgate_protocol::codec::StreamDecoder;
use subgate_protocol::kiro::{
    DecodeOptions, EncodeOptions, KiroStreamDecoder, Truncation, encode_request,
};

use super::{Kiro, MAX_REQUEST_BYTES, model_id};
use crate::Account;

/// The most truncations remembered; the oldest go first. A conversation
/// picks its notice up on its next turn, so a few hundred is plenty.
const REMEMBERED: usize = 256;

/// Truncated answers whose notice is still to be given.
#[derive(Debug, Clone, Default)]
pub(crate) struct Truncations(Arc<Mutex<VecDeque<Truncation>>>);

impl Truncations {
    fn remember(&self, truncation: Truncation) {
        let mut list = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if list.contains(&truncation) {
            return;
        }
        if list.len() == REMEMBERED {
            list.pop_front();
        }
        list.push_back(truncation);
    }

    fn snapshot(&self) -> Vec<Truncation> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    fn forget(&self, used: &[Truncation]) {
        if used.is_empty() {
            return;
        }
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|truncation| !used.contains(truncation));
    }
}

impl Kiro {
    /// Writes the conversation for Kiro, refusing one too large for it.
    pub(crate) fn encode(
        &self,
        account: &Account,
        request: &Request,
        model: &str,
        dropped: &mut Vec<Dropped>,
    ) -> Result<Bytes, Invalid> {
        let profile = account
            .credential
            .session()
            .and_then(|session| session.tokens().login.profile_arn.clone());
        let truncations = self.truncations.snapshot();
        let options = EncodeOptions {
            origin: "AI_EDITOR",
            profile_arn: profile.as_deref(),
            thinking_tags: self.thinking_tags,
            max_description_chars: 10_000,
            truncations: &truncations,
        };
        let encoded = encode_request(request, &model_id(model), &options, dropped)?;
        if encoded.body.len() > MAX_REQUEST_BYTES {
            return Err(Invalid::body(format!(
                "the conversation is {} kB once written for Kiro, more than the {} kB it accepts; \
                 start a new conversation or compact this one",
                encoded.body.len() / 1000,
                MAX_REQUEST_BYTES / 1000
            )));
        }
        self.truncations.forget(&encoded.used);
        Ok(Bytes::from(encoded.body))
    }

    /// Reads Kiro's event stream into canonical events.
    pub(crate) fn decoder(
        &self,
        origin: &str,
        model: &str,
        max_event_bytes: usize,
    ) -> Box<dyn StreamDecoder> {
        let model = model_id(model);
        let options = DecodeOptions {
            thinking_tags: self.thinking_tags,
            max_input_tokens: self.max_input_tokens(&model),
            max_event_bytes,
        };
        let memory = self.truncations.clone();
        Box::new(
            KiroStreamDecoder::new(origin, &model, options)
                .on_truncation(Box::new(move |truncation| memory.remember(truncation))),
        )
    }

    /// Reads a whole event stream into one answer.
    pub(crate) fn decode_whole(
        &self,
        origin: &str,
        model: &str,
        max_event_bytes: usize,
        body: &[u8],
    ) -> Result<Response, Invalid> {
        let mut decoder = self.decoder(origin, model, max_event_bytes);
        let mut aggregator = Aggregator::default();
        let unreadable =
            |message: String| Invalid::body(format!("the answer could not be read: {message}"));
        decoder
            .feed(body, &mut |event| aggregator.push(event))
            .and_then(|()| decoder.finish(&mut |event| aggregator.push(event)))
            .map_err(|error| unreadable(error.0))?;
        aggregator
            .finish()
            .map_err(|error| unreadable(error.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_is_bounded_and_forgets_what_was_used() {
        let memory = Truncations::default();
        for id in 0..=REMEMBERED {
            memory.remember(Truncation::ToolInput {
                tool_use_id: format!("t{id}"),
            });
        }
        let all = memory.snapshot();
        assert_eq!(all.len(), REMEMBERED);
        assert_eq!(
            all[0],
            Truncation::ToolInput {
                tool_use_id: "t1".to_owned()
            }
        );
        memory.forget(&all[..10]);
        assert_eq!(memory.snapshot().len(), REMEMBERED - 10);
    }
}
