//! The arguments that several commands share: where Temporal is, the output
//! format, and the parsers of durations and rates.

use clap::ValueEnum;
use schedule_sync::project;

/// Where Temporal is; Temporal's environment and config file apply first.
#[derive(clap::Args, Clone)]
pub(crate) struct TemporalArgs {
    /// Temporal address (host:port or URL); overrides TEMPORAL_ADDRESS.
    #[arg(long)]
    address: Option<String>,
    /// Temporal namespace; overrides TEMPORAL_NAMESPACE.
    #[arg(long)]
    namespace: Option<String>,
}

impl TemporalArgs {
    /// The flags, as overrides of Temporal's environment and config file.
    pub(crate) fn overrides(&self) -> schedule_sync::connection::Overrides {
        schedule_sync::connection::Overrides {
            address: self.address.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

/// Parses `30s`, `5m`, `1h30m`.
pub(crate) fn duration(text: &str) -> Result<std::time::Duration, String> {
    schedule_sync::duration::parse_duration(text).map_err(|e| e.to_string())
}

pub(crate) fn requests_per_second(text: &str) -> Result<f64, String> {
    let min = schedule_sync::store::MIN_RATE;
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= min => Ok(rate),
        _ => Err(format!(
            "expected a number of requests per second, at least {min}"
        )),
    }
}

/// Output for people or for machines.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

/// The connection of the selected environment, or Temporal's own settings
/// when the project has none; the flags on top either way.
pub(crate) fn connection_settings(
    loaded: &project::Loaded,
    flags: &TemporalArgs,
) -> Result<schedule_sync::connection::Settings, schedule_sync::connection::ConnectionError> {
    use schedule_sync::connection::Settings;
    match &loaded.environment {
        Some(environment) => Settings::for_environment(environment, &flags.overrides()),
        None => Settings::load(&flags.overrides()),
    }
}
