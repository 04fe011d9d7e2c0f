//! The verbs that leave the deployments alone: the packages of a deployment, what changed between
//! two, refreshing repo metadata and searching it (which write only the cache).

use anyhow::Result;

use crate::error::UserError;
use crate::repo::{Fetcher, RepoOptions, SyncReport};
use crate::rpm::Nevra;
use crate::rpmdb::{self, PackageDiff};
use crate::sysroot::Sysroot;

/// The packages of the deployment or commit `spec` names (see [`Sysroot::resolve_commit`]; `None`
/// is the current deployment), from its rpm database.
pub fn packages(sysroot: &Sysroot, spec: Option<&str>) -> Result<Vec<Nevra>> {
    let commit = sysroot.resolve_commit(spec)?;
    rpmdb::packages_in_commit(&sysroot.repo(), &commit)
}

/// A package diff between two commits.
#[derive(Debug)]
pub struct CommitDiff {
    /// The commit compared from.
    pub from: String,
    /// The commit compared to.
    pub to: String,
    /// What changed between their packages.
    pub diff: PackageDiff,
}

/// The package changes from `from` to `to` (deployments or commits). Without `to`, to the latest
/// deployment; without either, booted → pending, else rollback → current.
pub fn diff(sysroot: &Sysroot, from: Option<&str>, to: Option<&str>) -> Result<CommitDiff> {
    let (from, to) = match (from, to) {
        (Some(from), Some(to)) => (
            sysroot.resolve_commit(Some(from))?,
            sysroot.resolve_commit(Some(to))?,
        ),
        (Some(from), None) => (
            sysroot.resolve_commit(Some(from))?,
            sysroot.latest().csum().to_string(),
        ),
        (None, _) => default_pair(sysroot)?,
    };
    let repo = sysroot.repo();
    let diff = rpmdb::diff(
        &rpmdb::packages_in_commit(&repo, &from)?,
        &rpmdb::packages_in_commit(&repo, &to)?,
    );
    Ok(CommitDiff { from, to, diff })
}

/// What a diff compares without arguments: booted → pending, or rollback → current.
fn default_pair(sysroot: &Sysroot) -> Result<(String, String)> {
    let pair = match (sysroot.booted(), sysroot.pending()) {
        (Some(booted), Some(pending)) => Some((booted, pending)),
        _ => sysroot
            .rollback()
            .map(|rollback| (rollback, sysroot.current())),
    };
    let (from, to) = pair.ok_or_else(|| {
        UserError::new("there is only one deployment to compare")
            .hint("name two deployments or commits: `pkglayer db diff FROM TO`")
    })?;
    Ok((from.csum().to_string(), to.csum().to_string()))
}

/// Fetches the metadata of every enabled repo of the current deployment that is not fresh (all of
/// them with [`crate::repo::Freshness::Refresh`]).
pub fn refresh_metadata(sysroot: &Sysroot, options: &RepoOptions) -> Result<SyncReport> {
    let base = crate::base::current_base(sysroot)?;
    crate::repo::host::sync_metadata(&sysroot.workspace(), options, &base, &Fetcher::new(), true)
}

/// The packages of the enabled repos whose name or summary holds every one of `terms` (case
/// aside), the newest of each name; those whose name holds them all first.
pub fn search(
    sysroot: &Sysroot,
    options: &RepoOptions,
    terms: &[String],
) -> Result<(Vec<crate::solver::Found>, SyncReport)> {
    let base = crate::base::current_base(sysroot)?;
    let sync = crate::repo::host::sync_metadata(
        &sysroot.workspace(),
        options,
        &base,
        &Fetcher::new(),
        true,
    )?;
    let mut resolver = crate::solver::Resolver::new(std::env::consts::ARCH);
    crate::plan::resolve::add_repos(&mut resolver, &sysroot.workspace(), &sync.repos, false)?;
    // As dnf's search, packages of module streams that are not active are not found.
    let origin = sysroot.origin(&sysroot.latest())?;
    let repo = sysroot.repo();
    if let Some(modules) = crate::plan::resolve::activate_modules(
        &sysroot.workspace(),
        &repo,
        &base,
        &sync.repos,
        &origin,
    )? {
        modules.filter(&mut resolver);
    }
    Ok((resolver.search(terms), sync))
}
