//! The upstream's model catalog, and the lists known without asking.

use subgate_config::Preset;

/// Model ids from `GET {base_url}/models`.
pub(crate) fn parse_models(body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    subgate_protocol::openai_chat::model_ids(body)
}

/// OpenAI's current models, for when its catalog cannot be fetched.
pub(crate) const OPENAI_MODELS: &[&str] = &[
    "gpt-5.1",
    "gpt-5.1-codex",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-5-codex",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4o",
    "gpt-4o-mini",
    "o3",
    "o4-mini",
];

/// Whether a name is one of OpenAI's: `gpt-*`, the `o1`/`o3`/`o4…`
/// reasoning series, `codex-*`.
pub(crate) fn is_openai_family(model: &str) -> bool {
    let o_series =
        model.len() > 1 && model.starts_with('o') && model.as_bytes()[1].is_ascii_digit();
    model.starts_with("gpt-") || o_series || model.starts_with("codex-")
}

/// What a preset's service is known to serve; local servers serve what
/// was loaded into them, so only their catalog can tell.
pub(crate) fn preset_models(preset: Preset) -> &'static [&'static str] {
    match preset {
        Preset::DeepSeek => &["deepseek-chat", "deepseek-reasoner"],
        Preset::Groq => &[
            "llama-3.3-70b-versatile",
            "llama-3.1-8b-instant",
            "openai/gpt-oss-120b",
            "openai/gpt-oss-20b",
            "moonshotai/kimi-k2-instruct",
        ],
        Preset::OpenRouter | Preset::Ollama | Preset::Vllm | Preset::LmStudio => &[],
    }
}
