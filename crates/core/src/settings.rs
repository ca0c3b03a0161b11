//! Reading the configuration: built-in defaults → `<dir>/default.yaml` → `<dir>/<APP_ENV>.yaml`
//! (optional) → environment variables `CHAT__<SECTION>__<KEY>` (for example
//! `CHAT__MYSQL__URL`). Unknown keys are errors, so a typo does not pass silently.

use std::path::{Path, PathBuf};

use chat_model::Settings;
use config::{Config, Environment, File, FileFormat};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    Read(#[from] config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

/// Where the configuration folder is: `--config`, else `CHAT_CONFIG_DIR`, else `./config`.
pub fn config_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("CHAT_CONFIG_DIR").map(PathBuf::from)).unwrap_or_else(|| PathBuf::from("config"))
}

/// Reads the settings from `dir` (its `default.yaml` is optional too, for a bare binary) and
/// the environment.
pub fn load(dir: &Path) -> Result<Settings, SettingsError> {
    let app_env = std::env::var("APP_ENV").ok().filter(|e| !e.is_empty());
    let mut builder = Config::builder()
        .add_source(Config::try_from(&Settings::default())?)
        .add_source(File::from(dir.join("default.yaml")).format(FileFormat::Yaml).required(false));
    if let Some(env) = app_env {
        builder =
            builder.add_source(File::from(dir.join(format!("{env}.yaml"))).format(FileFormat::Yaml).required(false));
    }
    let cfg = builder
        .add_source(
            Environment::with_prefix("CHAT")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                // lists from the environment are comma-separated
                .list_separator(",")
                .with_list_parse_key("server.allowed_origins"),
        )
        .build()?;
    let settings: Settings = cfg.try_deserialize()?;
    settings.check().map_err(SettingsError::Invalid)?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_config() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
    }

    /// `config/default.yaml` documents the built-in defaults: the two must agree.
    #[test]
    fn default_yaml_matches_the_built_in_defaults() {
        let text = std::fs::read_to_string(repo_config().join("default.yaml")).unwrap();
        let from_file: Settings = Config::builder()
            .add_source(File::from_str(&text, FileFormat::Yaml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap();
        assert_eq!(from_file, Settings::default());
    }

    /// A bare binary (no configuration folder) starts on the built-in defaults.
    #[test]
    fn the_defaults_alone_are_a_configuration() {
        let empty = std::env::temp_dir().join("chat-no-config-here");
        assert_eq!(load(&empty).unwrap().server, Settings::default().server);
    }

    #[test]
    fn settings_the_types_allow_but_the_server_cannot_use_are_refused() {
        let mut s = Settings::default();
        assert!(s.check().is_ok());
        s.chat.commit_batch = 20_000;
        assert!(s.check().unwrap_err().contains("chat.commit_batch"));
        let mut s = Settings::default();
        s.chat.max_content_bytes = 1 << 20;
        s.chat.max_frame_bytes = 2 << 20;
        assert!(s.check().unwrap_err().contains("max_content_bytes"));
    }
}
