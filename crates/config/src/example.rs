//! The commented example that `subgate config init` writes.

/// A commented config file showing every setting with its default.
pub const EXAMPLE: &str = include_str!("../config.example.toml");

#[cfg(test)]
mod tests {
    use super::EXAMPLE;
    use crate::{Database, parse};

    fn load_text(text: &str, env: &dyn Fn(&str) -> Option<String>) -> crate::Config {
        parse(text, env).unwrap()
    }

    #[test]
    fn the_example_as_written_is_valid_and_all_defaults() {
        let config = load_text(EXAMPLE, &|_| None);
        assert!(
            config
                .providers
                .iter()
                .all(|entry| entry.kind.is_subscription())
        );
        assert_eq!(config.server.port, crate::DEFAULT_PORT);
    }

    /// Every setting line in the example, uncommented, must be valid too, so
    /// the documentation cannot drift from the schema.
    #[test]
    fn the_example_uncommented_is_valid() {
        let uncommented: String = EXAMPLE
            .lines()
            .map(|line| line.strip_prefix("# ").unwrap_or(line))
            .collect::<Vec<_>>()
            .join("\n");
        let env = |name: &str| {
            matches!(
                name,
                "OPENAI_COMPATIBLE_KEY" | "OPENAI_API_KEY" | "LOCAL_WORK_KEY"
            )
            .then(|| format!("sk-from-env-{name}"))
        };
        let config = load_text(&uncommented, &env);
        let api: Vec<_> = config
            .providers
            .iter()
            .filter(|entry| !entry.kind.is_subscription())
            .collect();
        assert_eq!(api.len(), 2);
        assert_eq!(config.providers[0].accounts.len(), 4);
        assert_eq!(config.aliases.len(), 1);
        assert!(matches!(config.storage.database, Database::Postgres { .. }));
    }
}
