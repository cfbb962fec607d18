//! Token counting: `POST /v1/messages/count_tokens` (Anthropic clients) and
//! `:countTokens` (Gemini clients). Upstreams that can count are asked;
//! for the others the count is estimated locally with OpenAI's `o200k`
//! tokenizer, which is close for GPT models and a fair guess for the rest.

use std::sync::OnceLock;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use subgate_protocol::canonical::{Block, Request};
use subgate_protocol::codec::Target;
use subgate_protocol::count;
use subgate_protocol::dispatch;
use subgate_protocol::passthrough::BodyHead;
use tiktoken_rs::CoreBPE;

use crate::generate::{log_dropped, refusal};
use crate::{ClientRequest, Engine, GatewayError, Reply, ReplyBody};

/// Tokens an image or a document is counted as in a local estimate.
const MEDIA_TOKENS: usize = 1_000;

impl Engine {
    /// Counts the input tokens of a request in an Anthropic or Gemini
    /// client's dialect. Counting is free, so it is not metered.
    pub async fn count_tokens(&self, request: ClientRequest) -> Result<Reply, GatewayError> {
        let client = request.dialect;
        let head = BodyHead::parse(client, &request.body, request.line())
            .map_err(GatewayError::invalid)?;
        let targets = self
            .scoped_targets(request.key.as_deref(), &head.model)
            .await?;
        let target = &targets[0];
        let provider = &self.inner.providers[target.provider];
        let model = target.upstream_model.as_str();
        let upstream = provider.dialect_for(client, model);
        // The first account that is not resting; with none, the count is
        // estimated here rather than refused.
        let order = self.inner.pools[target.provider].order(
            provider,
            model,
            &self.inner.health,
            None,
            crate::clock::now_millis(),
        );
        let account = order
            .accounts
            .first()
            .map(|&index| &provider.accounts()[index]);

        let mut dropped = Vec::new();
        let canonical = || {
            count::decode_request(client, &request.body, &head.model, &mut Vec::new())
                .map_err(GatewayError::invalid)
        };
        let estimated = || -> Result<Reply, GatewayError> {
            let tokens = estimate(&canonical()?);
            Ok(json_reply(count::encode_reply(client, tokens)))
        };
        // An upstream that speaks no client dialect (Kiro) cannot count.
        let (Some(account), Some(dialect)) = (account, upstream.dialect()) else {
            return estimated();
        };
        let upstream_body = if dialect == client {
            head.upstream_body(client, model, false)
                .map_or_else(|| request.body.clone(), Bytes::from)
        } else {
            let canonical = canonical()?;
            let generate = dispatch::encode_request(
                dialect,
                &canonical,
                Target {
                    provider: provider.name(),
                    model,
                },
                provider.chat_upstream(),
                &mut dropped,
            );
            log_dropped(provider.name(), &dropped);
            Bytes::from(count::upstream_body(dialect, model, &generate))
        };
        let client_headers = (dialect == client).then_some(&request.headers);
        let Some(outbound) = provider.count_request(account, model, upstream_body, client_headers)
        else {
            return estimated();
        };
        let response = provider
            .transport()
            .send(outbound)
            .await
            .map_err(|error| GatewayError::transport(provider.name(), &error))?;
        if !response.status.is_success() {
            return Err(refusal(provider, account, response, upstream, client).await);
        }
        let whole = response
            .body
            .collect(provider.max_event_bytes())
            .await
            .map_err(|error| GatewayError::transport(provider.name(), &error))?;
        if dialect == client {
            return Ok(json_reply(whole.to_vec()));
        }
        let tokens = count::read_count(dialect, &whole).ok_or_else(|| {
            GatewayError::unreadable(provider.name(), "its token count is missing")
        })?;
        Ok(json_reply(count::encode_reply(client, tokens)))
    }
}

fn json_reply(body: Vec<u8>) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Reply {
        status: StatusCode::OK,
        headers,
        body: ReplyBody::Full(Bytes::from(body)),
    }
}

fn tokenizer() -> Option<&'static CoreBPE> {
    static TOKENIZER: OnceLock<Option<CoreBPE>> = OnceLock::new();
    TOKENIZER
        .get_or_init(|| tiktoken_rs::o200k_base().ok())
        .as_ref()
}

/// A local estimate of a request's input tokens.
pub(crate) fn estimate(request: &Request) -> u64 {
    let mut text = String::new();
    let mut media = 0;
    for part in &request.system {
        text.push_str(&part.text);
        text.push('\n');
    }
    for tool in &request.tools {
        text.push_str(&tool.name);
        text.push_str(tool.description.as_deref().unwrap_or_default());
        text.push_str(&tool.parameters.to_string());
    }
    let mut stack: Vec<&Block> = request
        .messages
        .iter()
        .flat_map(|message| message.content.iter())
        .collect();
    while let Some(block) = stack.pop() {
        match block {
            Block::Text(part) => text.push_str(&part.text),
            Block::Thinking(thinking) => text.push_str(&thinking.text),
            Block::ToolUse(tool) => {
                text.push_str(&tool.name);
                text.push_str(&tool.input);
            }
            Block::ToolResult(result) => stack.extend(result.content.iter()),
            Block::Image(_) | Block::Document(_) => media += MEDIA_TOKENS,
            Block::RedactedThinking(_) => {}
        }
        text.push('\n');
    }
    let counted = tokenizer().map_or(text.len() / 4, |bpe| bpe.encode_ordinary(&text).len());
    u64::try_from(counted + media).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use subgate_protocol::canonical::{Message, Role};

    use super::*;

    #[test]
    fn estimates_grow_with_the_prompt() {
        let short = Request {
            messages: vec![Message {
                role: Role::User,
                content: vec![Block::text("Hello")],
            }],
            ..Request::default()
        };
        let mut long = short.clone();
        long.messages[0].content.push(Block::text(
            "Hello there, how are you doing today? ".repeat(20),
        ));
        let (short, long) = (estimate(&short), estimate(&long));
        assert!((1..5).contains(&short), "{short}");
        assert!(long > 150, "{long}");
    }
}
