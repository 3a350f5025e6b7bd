//! `dtswatch completions SHELL` and `dtswatch man`: generated from the clap
//! definitions, so they never drift from the real flags. The package installs
//! both; from a source tree, redirect them where the shell and man look.

use std::process::ExitCode;

use clap::CommandFactory as _;

use super::Cli;

pub fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "dtswatch", &mut script);
    crate::stdout::write(&String::from_utf8_lossy(&script));
    ExitCode::SUCCESS
}

pub fn man_page() -> anyhow::Result<ExitCode> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    crate::stdout::write(&String::from_utf8_lossy(&page));
    Ok(ExitCode::SUCCESS)
}
