//! Scratch directories, in the repo's `tmp/`: on the sysroot's filesystem (so checkouts can hardlink
//! repo objects) and found again after a crash. Each holds a shared `flock` on itself while in use;
//! [`remove_stale`] removes those nobody holds any more (their process died), so even a `SIGKILL`
//! leaves nothing behind after the next `cleanup`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ostree::gio::prelude::FileExt;

/// Names of pkglayer's scratch directories start with this.
const PREFIX: &str = "pkglayer-";

/// A scratch directory, removed on drop.
pub struct Scratch {
    dir: tempfile::TempDir,
    // Holds the lock that tells `remove_stale` the directory is in use.
    _in_use: std::fs::File,
}

impl Scratch {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The repo's `tmp/` as a real path (libostree may name the repo through `/proc/self/fd`).
fn repo_tmp(repo: &ostree::Repo) -> Result<PathBuf> {
    let tmp = repo
        .path()
        .child("tmp")
        .path()
        .context("the repo is local")?;
    std::fs::canonicalize(&tmp).with_context(|| format!("Resolving {}", tmp.display()))
}

/// A new scratch directory named after `purpose` (e.g. `compose`).
pub fn create(repo: &ostree::Repo, purpose: &str) -> Result<Scratch> {
    let tmp = repo_tmp(repo)?;
    let dir = tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{purpose}-"))
        .tempdir_in(&tmp)
        .with_context(|| format!("Creating a scratch directory in {}", tmp.display()))?;
    let in_use = std::fs::File::open(dir.path())?;
    in_use
        .lock_shared()
        .with_context(|| format!("Locking {}", dir.path().display()))?;
    Ok(Scratch {
        dir,
        _in_use: in_use,
    })
}

/// Removes the scratch directories no running process holds; returns how many.
pub fn remove_stale(repo: &ostree::Repo) -> Result<usize> {
    let tmp = repo_tmp(repo)?;
    let mut removed = 0;
    for entry in std::fs::read_dir(&tmp).with_context(|| format!("Reading {}", tmp.display()))? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let path = entry.path();
        let Ok(dir) = std::fs::File::open(&path) else {
            continue;
        };
        if dir.try_lock().is_ok() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("Removing {}", path.display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}
