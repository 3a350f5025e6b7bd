//! `dtswatch check-config`: every problem at once with its position, exit 2;
//! or the warnings (on stderr, exit 0) and a summary of what the config
//! watches and where it sends alerts.

use std::path::Path;
use std::process::ExitCode;

use super::report_config_errors;
use crate::config;

pub fn check_config(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!("{warning}");
            }
            crate::outln!("{}: ok", path.display());
            crate::outln!("{}", config.summary());
            ExitCode::SUCCESS
        }
        Err(errors) => report_config_errors(&errors),
    }
}
