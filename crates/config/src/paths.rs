//! Where subgate looks for its files when nobody says.

use std::path::PathBuf;

use etcetera::BaseStrategy;

/// `$XDG_CONFIG_HOME/subgate/config.toml` (usually
/// `~/.config/subgate/config.toml`), if a home directory is known.
pub fn default_config_path() -> Option<PathBuf> {
    let strategy = etcetera::choose_base_strategy().ok()?;
    Some(strategy.config_dir().join("subgate").join("config.toml"))
}

/// `$XDG_DATA_HOME/subgate` (usually `~/.local/share/subgate`), if a home
/// directory is known.
pub fn default_data_dir() -> Option<PathBuf> {
    let strategy = etcetera::choose_base_strategy().ok()?;
    Some(strategy.data_dir().join("subgate"))
}

/// Expands a leading `~/` to the home directory.
pub(crate) fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => {
            etcetera::home_dir().map_or_else(|_| PathBuf::from(path), |home| home.join(rest))
        }
        None => PathBuf::from(path),
    }
}
