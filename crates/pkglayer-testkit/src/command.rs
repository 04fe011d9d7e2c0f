//! Running the real tools (`ostree`, `rpm`, `sqlite3`) from tests.

use std::process::Command;

use anyhow::{Result, bail};

/// The environment every ostree call of the test kit (and every pkglayer run under test) needs:
/// deployments without the immutable bit, so a test's temporary sysroot can be removed.
pub const TEST_ENV: [(&str, &str); 1] = [("OSTREE_SYSROOT_DEBUG", "mutable-deployments")];

/// Runs `command` with [`TEST_ENV`], returning stdout; fails with the command and its stderr.
pub fn run(command: &mut Command) -> Result<String> {
    command.envs(TEST_ENV);
    let output = command.output();
    let shown = format!("{command:?}");
    match output {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => bail!(
            "{shown} exited with {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(err) => bail!("{shown} could not start: {err}"),
    }
}
