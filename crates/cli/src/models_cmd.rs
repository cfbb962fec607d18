//! `subgate models`, and what the one-shot commands that start the engine
//! share: starting and stopping it, and printing a table.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;
use subgate_config::LogConfig;
use subgate_engine::{Engine, ModelInfo};

use crate::config_cmd::load_config;

pub(crate) fn run(config_file: Option<PathBuf>, json: bool) -> Result<()> {
    let models = with_engine(config_file, async |engine| {
        engine.refresh_catalogs().await;
        Ok(engine.models())
    })?;
    let mut out = std::io::stdout().lock();
    if json {
        let list: Vec<Model<'_>> = models
            .iter()
            .map(|model| Model {
                id: &model.id,
                provider: &model.provider,
            })
            .collect();
        write_json(&mut out, &list)
    } else {
        write_models(&mut out, &models)
    }
}

/// One entry of `models --json`.
#[derive(Serialize)]
struct Model<'a> {
    id: &'a str,
    provider: &'a str,
}

fn write_models(out: &mut impl Write, models: &[ModelInfo]) -> Result<()> {
    let rows: Vec<[&str; 2]> = models
        .iter()
        .map(|model| [model.id.as_str(), model.provider.as_str()])
        .collect();
    if !rows.is_empty() {
        write_table(out, ["MODEL", "PROVIDER"], &rows)?;
    }
    let noun = if models.len() == 1 { "model" } else { "models" };
    writeln!(out, "{} {noun}", models.len()).context("writing to stdout")
}

/// Loads the config as `serve` does, logs only warnings (to stderr, so
/// stdout stays for the output), opens the engine (without its periodic
/// background work) on a current-thread runtime, runs `work` with it, and
/// shuts it down whatever `work` returned.
pub(crate) fn with_engine<T>(
    config_file: Option<PathBuf>,
    work: impl AsyncFnOnce(&Engine) -> Result<T>,
) -> Result<T> {
    let config = load_config(config_file, Vec::new())?;
    let _log = crate::logging::init(&LogConfig {
        format: config.log.format,
        filter: "warn".to_owned(),
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let engine = Engine::open(&config).await?;
        let result = work(&engine).await;
        engine.shutdown().await;
        result
    })
}

/// Writes `value` as pretty JSON and a newline.
pub(crate) fn write_json(out: &mut impl Write, value: &impl Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).context("writing to stdout")?;
    writeln!(out).context("writing to stdout")
}

/// Writes a header and rows in columns two spaces apart, without trailing
/// spaces.
pub(crate) fn write_table<const N: usize>(
    out: &mut impl Write,
    header: [&str; N],
    rows: &[[&str; N]],
) -> Result<()> {
    let mut widths = header.map(|cell| cell.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end()).context("writing to stdout")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_do_not_pad_the_last_column() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            ["MODEL", "PROVIDER"],
            &[["m1", "local"], ["a-longer-model", "openrouter"]],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "MODEL           PROVIDER\nm1              local\na-longer-model  openrouter\n"
        );
    }
}
