//! Files with the setuid or setgid bit among what a plan adds, for the plan's output: such files are
//! kept as rpm installs them, and the user sees them before they are deployed. They are read from
//! the RPM headers at hand: local packages and packages already in the package cache (a package
//! still to download shows its files once it is fetched, e.g. with `--download-only`).

use std::io::Cursor;

use anyhow::{Context, Result};

use super::InstallPlan;
use crate::rpm::Nevra;
use crate::solver::LOCAL_REPO;

/// A setuid or setgid file of a package the plan adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetidFile {
    /// The package shipping it.
    pub nevra: Nevra,
    /// Where the package puts it.
    pub path: String,
    /// Permission bits, setuid (0o4000) and setgid (0o2000) included.
    pub mode: u32,
    /// Owner, as the header names it.
    pub user: String,
    /// Group, as the header names it.
    pub group: String,
}

impl SetidFile {
    /// `setuid root`, `setgid bin`, `setuid root, setgid bin`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.mode & 0o4000 != 0 {
            parts.push(format!("setuid {}", self.user));
        }
        if self.mode & 0o2000 != 0 {
            parts.push(format!("setgid {}", self.group));
        }
        parts.join(", ")
    }
}

/// The setuid and setgid regular files of the packages `plan` adds whose headers are at hand,
/// sorted by path.
pub(super) fn setid_files(repo: &ostree::Repo, plan: &InstallPlan) -> Result<Vec<SetidFile>> {
    let mut found = Vec::new();
    for package in &plan.added {
        let head = if package.repo == LOCAL_REPO {
            match plan.local_files.iter().find(|l| l.nevra == package.nevra) {
                Some(local) => Some(crate::package_cache::read_head(&local.path)?.0),
                None => None,
            }
        } else {
            crate::layer::cached_copy(repo, package)?
                .map(|cached| crate::package_cache::head(repo, &cached.commit))
                .transpose()?
        };
        let Some(head) = head else { continue };
        let metadata = ::rpm::PackageMetadata::parse(&mut Cursor::new(&head))
            .with_context(|| format!("Reading the header of {}", package.nevra))?;
        for entry in metadata.get_file_entries().unwrap_or_default() {
            let mode = u32::from(entry.mode().permissions());
            if entry.mode().file_type() == ::rpm::FileType::Regular
                && mode & 0o6000 != 0
                && !entry.flags().contains(::rpm::FileFlags::GHOST)
            {
                found.push(SetidFile {
                    nevra: package.nevra.clone(),
                    path: entry.path().to_string_lossy().into_owned(),
                    mode,
                    user: entry.user().to_string(),
                    group: entry.group().to_string(),
                });
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}
