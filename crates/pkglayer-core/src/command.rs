//! Running external programs (`rpm`, ...) with their stderr kept for the error message.

use std::process::Command;

use anyhow::{Result, bail};

pub(crate) trait CommandExt {
    /// Runs the command to completion and returns its stdout; a failure carries the command line,
    /// the exit status and what the program wrote to stderr.
    fn run_capture(&mut self) -> Result<String>;
}

impl CommandExt for Command {
    fn run_capture(&mut self) -> Result<String> {
        let command_line = std::iter::once(self.get_program())
            .chain(self.get_args())
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let output = match self.output() {
            Ok(output) => output,
            Err(err) => bail!("could not run `{command_line}`: {err}"),
        };
        if !output.status.success() {
            bail!(
                "`{command_line}` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}
