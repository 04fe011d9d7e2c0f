//! rpm-md repositories of test packages, written by the real createrepo_c.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::command::run;
use crate::package::TestPackage;

/// Writes `packages` into `dir` (under `Packages/`) and runs createrepo_c with the metadata
/// compressed as `compression` (`gz`, `xz`, `zstd` or `bz2`).
pub fn create_repo(dir: &Path, packages: &[TestPackage], compression: &str) -> Result<()> {
    let packages_dir = dir.join("Packages");
    std::fs::create_dir_all(&packages_dir)?;
    for package in packages {
        package.write_to(&packages_dir)?;
    }
    run(Command::new("createrepo_c")
        .args(["--quiet", "--no-database"])
        .arg(format!("--general-compress-type={compression}"))
        .arg(dir))?;
    Ok(())
}
