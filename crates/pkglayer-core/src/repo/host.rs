//! The repos a host's deployment is configured with: its `/etc/yum.repos.d` (or `--reposdir`),
//! `$releasever` from the base, and their metadata synced into the stateroot's cache.

use std::path::{Path, PathBuf};

use anyhow::Result;
use fn_error_context::context;

use super::{Fetcher, Freshness, RepoConfig, RepoVars, SyncReport};
use crate::error::UserError;
use crate::layout::CacheFolder;
use crate::workspace::Workspace;

/// Where repo configuration comes from and how fresh metadata must be.
#[derive(Debug, Clone)]
pub struct RepoOptions {
    /// A directory of `*.repo` files instead of the deployment's `/etc/yum.repos.d`.
    pub reposdir: Option<PathBuf>,
    /// When cached metadata is used instead of fetching it.
    pub freshness: Freshness,
    /// Globs of repo ids to disable for this operation (`--disablerepo`), applied first.
    pub disable: Vec<String>,
    /// Globs of repo ids to enable for this operation (`--enablerepo`), applied after.
    pub enable: Vec<String>,
    /// `$releasever` instead of the base's os-release `VERSION_ID` (`--releasever`).
    pub releasever: Option<String>,
}

/// The repos configured for the current deployment, with `$releasever` from `base_commit` (unless
/// `options` set it) and the
/// variables of its `/etc/dnf/vars`, enabled and disabled as `options` say.
#[context("Loading repo configuration")]
pub fn load_repos(
    workspace: &Workspace,
    options: &RepoOptions,
    base_commit: &str,
) -> Result<Vec<RepoConfig>> {
    let repo = workspace.repo();
    let releasever = match &options.releasever {
        Some(releasever) => releasever.clone(),
        None => crate::tree::os_release_version_id(&repo, base_commit)?.unwrap_or_default(),
    };
    let mut vars = RepoVars::new(&releasever, std::env::consts::ARCH);
    if let Some(etc) = workspace.etc() {
        vars = vars.with_vars_dir(&etc.join("dnf/vars"))?;
    }
    let mut repos = match (&options.reposdir, workspace.etc()) {
        (Some(dir), _) => super::load_repos_dir(dir, &vars)?,
        (None, None) => Vec::new(),
        (None, Some(etc)) => {
            let dir = etc.join("yum.repos.d");
            if !dir.exists() {
                return Ok(Vec::new());
            }
            // Named as the host sees them, not by the deployment's directory.
            super::config::load_repos_dir_as(&dir, Path::new("/etc/yum.repos.d"), &vars)?
        }
    };
    select(&mut repos, options)?;
    Ok(repos)
}

/// Applies `--disablerepo`, then `--enablerepo` (globs of ids, as dnf does); a glob that names no
/// repo is an error, as in dnf.
fn select(repos: &mut [RepoConfig], options: &RepoOptions) -> Result<()> {
    let matches = |glob: &str, id: &str| crate::solver::glob_match(glob.as_bytes(), id.as_bytes());
    for (globs, enabled, flag) in [
        (&options.disable, false, "--disablerepo"),
        (&options.enable, true, "--enablerepo"),
    ] {
        for glob in globs {
            let mut any = false;
            for repo in repos.iter_mut().filter(|r| matches(glob, &r.id)) {
                repo.enabled = enabled;
                any = true;
            }
            if !any {
                let ids: Vec<&str> = repos.iter().map(|r| r.id.as_str()).collect();
                return Err(
                    UserError::new(format!("{flag} {glob}: no repo has that id"))
                        .hint(format!(
                            "configured repos: {}",
                            if ids.is_empty() {
                                "none".to_string()
                            } else {
                                ids.join(", ")
                            }
                        ))
                        .into(),
                );
            }
        }
    }
    Ok(())
}

/// Fetches (or reuses) the metadata of every enabled repo, for a layer on `base_commit`. Having no
/// enabled repo is an error when `need_repos`.
pub fn sync_metadata(
    workspace: &Workspace,
    options: &RepoOptions,
    base_commit: &str,
    fetcher: &Fetcher,
    need_repos: bool,
) -> Result<SyncReport> {
    let repos = load_repos(workspace, options, base_commit)?;
    if need_repos && !repos.iter().any(|r| r.enabled) {
        return Err(UserError::new("no enabled repos")
            .hint(match &options.reposdir {
                _ if !repos.is_empty() && !options.disable.is_empty() => {
                    "--disablerepo disabled every repo; leave it out, or add --enablerepo ID"
                        .to_string()
                }
                Some(dir) => format!("add a *.repo file with enabled=1 to {}", dir.display()),
                None => "add a *.repo file to /etc/yum.repos.d, or pass --reposdir DIR".to_string(),
            })
            .into());
    }
    let folder = workspace.cache().folder(CacheFolder::RepoMetadata);
    let report = super::sync_repos(&folder, &repos, options.freshness, fetcher)?;
    crate::failpoint::hit("after-metadata");
    Ok(report)
}
