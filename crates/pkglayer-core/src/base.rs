//! The vendor's base: which commit a layer goes on, and pulling a newer one for `upgrade`.

use anyhow::{Context, Result};
use fn_error_context::context;
use ostree::{gio, glib};

use crate::commit_metadata::{CommitInfo, DeploymentLayer};
use crate::error::UserError;
use crate::origin::Origin;
use crate::sysroot::Sysroot;

/// How `upgrade` gets the newest base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseFetch {
    /// Pull the whole commit from the remote.
    Pull,
    /// Pull only the commit object: enough to compare versions (`upgrade --check`).
    CommitOnly,
    /// Use what the local repo already has for the ref (`--cache-only`).
    Local,
}

/// The base commit under the latest deployment.
pub fn current_base(sysroot: &Sysroot) -> Result<String> {
    let latest = sysroot.latest();
    let origin = sysroot.origin(&latest)?;
    Ok(DeploymentLayer::of_deployment(&sysroot.repo(), &latest.csum(), &origin)?.base_commit)
}

/// The newest commit of the origin's refspec, pulled from its remote as `fetch` says.
#[context("Fetching the newest base for {}", origin.refspec)]
pub fn newest_base(sysroot: &Sysroot, origin: &Origin, fetch: BaseFetch) -> Result<String> {
    let repo = sysroot.repo();
    let (remote, refname) = match origin.refspec.split_once(':') {
        Some((remote, refname)) => (Some(remote), refname),
        None => (None, origin.refspec.as_str()),
    };
    if let (Some(remote), BaseFetch::Pull | BaseFetch::CommitOnly) = (remote, fetch) {
        let flags = if fetch == BaseFetch::CommitOnly {
            ostree::RepoPullFlags::COMMIT_ONLY
        } else {
            ostree::RepoPullFlags::NONE
        };
        repo.pull(remote, &[refname], flags, None, gio::Cancellable::NONE)
            .map_err(|err| {
                UserError::new(format!(
                    "cannot pull {refname} from remote {remote}: {}",
                    err.message()
                ))
                .hint("check the network and `ostree remote show-url`; --cache-only upgrades to what is already here")
            })?;
    }
    newest_base_here(&repo, origin)?
        .with_context(|| format!("the repo has no commit for {}", origin.refspec))
}

/// `commit` in the repo, pulled from the origin's remote if the repo lacks it (a lockfile's base).
#[context("Fetching base commit {commit}")]
pub fn pull_commit(
    sysroot: &Sysroot,
    origin: &Origin,
    commit: &str,
    fetch: BaseFetch,
) -> Result<()> {
    let repo = sysroot.repo();
    if repo.load_commit(commit).is_ok() {
        return Ok(());
    }
    let remote = origin.refspec.split_once(':').map(|(remote, _)| remote);
    match (remote, fetch) {
        (Some(remote), BaseFetch::Pull | BaseFetch::CommitOnly) => {
            repo.pull(remote, &[commit], ostree::RepoPullFlags::NONE, None, gio::Cancellable::NONE)
                .map_err(|err| {
                    UserError::new(format!(
                        "cannot pull base commit {commit} from remote {remote}: {}",
                        err.message()
                    ))
                    .hint("the lockfile's base must be on the remote this host follows; check `ostree remote show-url`")
                })?;
            Ok(())
        }
        _ => Err(
            UserError::new(format!("the repo has no base commit {commit}"))
                .hint("upgrade without --cache-only, from the remote that has the lockfile's base")
                .into(),
        ),
    }
}

/// The commit the repo's ref for `origin`'s refspec points at, pulling nothing.
pub(crate) fn newest_base_here(repo: &ostree::Repo, origin: &Origin) -> Result<Option<String>> {
    let refname = origin
        .refspec
        .split_once(':')
        .map_or(origin.refspec.as_str(), |(_, refname)| refname);
    Ok(repo
        .resolve_rev(&origin.refspec, true)?
        .or(repo.resolve_rev(refname, true)?)
        .map(|commit| commit.to_string()))
}

/// Refuses a `newest` base that is older than the `current` one (a vendor ref rolled back or replayed
/// — also what a downgrade attack looks like): `upgrade` only goes forward.
pub fn refuse_older(repo: &ostree::Repo, current: &str, newest: &str, refspec: &str) -> Result<()> {
    if current == newest {
        return Ok(());
    }
    let (current_info, newest_info) = (
        CommitInfo::load(repo, current)?,
        CommitInfo::load(repo, newest)?,
    );
    let (then, now) = (current_info.timestamp(), newest_info.timestamp());
    if now >= then {
        return Ok(());
    }
    let describe = |commit: &str, info: &CommitInfo| -> String {
        let version = info.version().unwrap_or_else(|| commit[..12].to_string());
        let time = info.timestamp();
        let date = chrono::DateTime::from_timestamp(time as i64, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| time.to_string());
        format!("{version} ({date})")
    };
    Err(UserError::new(format!(
        "{refspec} now points at {}, older than the deployed base {}: the target is older than \
         the current deployment",
        describe(newest, &newest_info),
        describe(current, &current_info)
    ))
    .hint("upgrade never goes back; if the vendor withdrew a release, wait for the next one, or `pkglayer rollback` to an earlier deployment")
    .into())
}

/// The `version` metadata of a commit, if it has one.
pub fn version_of(repo: &ostree::Repo, commit: &str) -> Result<Option<String>> {
    Ok(CommitInfo::load(repo, commit)?.version())
}

/// The commit of `origin`'s refspec history that `target` names: a full checksum, or a `version`
/// (newest first). The history's commit objects are pulled from the remote (unless `cache_only`),
/// then the commit found, whole.
#[context("Finding {target} in the history of {}", origin.refspec)]
pub fn find_in_history(
    sysroot: &Sysroot,
    origin: &Origin,
    target: &str,
    cache_only: bool,
) -> Result<String> {
    let repo = sysroot.repo();
    let remote = origin.remote();
    let refname = origin
        .refspec
        .split_once(':')
        .map_or(origin.refspec.as_str(), |(_, refname)| refname);
    let is_checksum = target.len() == 64 && target.bytes().all(|b| b.is_ascii_hexdigit());
    let pull = |what: &str, flags: ostree::RepoPullFlags, depth: i32| -> Result<()> {
        let Some(remote) = remote.filter(|_| !cache_only) else {
            return Ok(());
        };
        let options = glib::VariantDict::new(None);
        options.insert("refs", vec![what.to_string()]);
        options.insert("flags", flags.bits() as i32);
        options.insert("depth", depth);
        repo.pull_with_options(remote, &options.end(), None, gio::Cancellable::NONE)
            .map_err(|err| {
                UserError::new(format!(
                    "cannot pull {what} from remote {remote}: {}",
                    err.message()
                ))
                .hint("check the network and `ostree remote show-url`")
                .into()
            })
    };
    let commit = if is_checksum {
        target.to_string()
    } else {
        pull(refname, ostree::RepoPullFlags::COMMIT_ONLY, -1)?;
        let mut next = newest_base_here(&repo, origin)?;
        let mut found = None;
        let mut versions = Vec::new();
        while let Some(commit) = next {
            let Ok((variant, _)) = repo.load_commit(&commit) else {
                break;
            };
            let version = CommitInfo::load(&repo, &commit)?.version();
            if version.as_deref() == Some(target) {
                found = Some(commit);
                break;
            }
            versions.extend(version);
            next = ostree::commit_get_parent(&variant).map(|p| p.to_string());
        }
        found.ok_or_else(|| {
            UserError::new(format!(
                "{} has no commit with version {target}",
                origin.refspec
            ))
            .hint(if versions.is_empty() {
                "give a commit checksum instead".to_string()
            } else {
                format!(
                    "versions in its history, newest first: {}",
                    versions.join(", ")
                )
            })
        })?
    };
    pull(&commit, ostree::RepoPullFlags::NONE, 0)?;
    let (_, state) = repo.load_commit(&commit).map_err(|_| {
        UserError::new(format!("commit {target} is not in the repo"))
            .hint("give a commit of the refspec's history (`ostree log` lists them)")
    })?;
    if state.contains(ostree::RepoCommitState::PARTIAL) {
        return Err(
            UserError::new(format!("commit {target} is only partly in the repo"))
                .hint("run it again without --cache-only to pull it")
                .into(),
        );
    }
    Ok(commit)
}
