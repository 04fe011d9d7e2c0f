//! `compose`: a layer built once on a build machine, for many hosts to pull with OSTree.
//!
//! No sysroot: the base commit comes from an archive-mode repo (the one hosts pull from), the
//! request from an origin-like file, the repos from a `*.repo` folder. The layering pipeline runs
//! in a work folder of its own ([`Workspace`]: a bare repo for the package cache and the compose,
//! the metadata and download caches, the ID allocations), and only the layered commit goes into
//! the archive repo, under the requested ref, with the repo's summary regenerated and a static
//! delta from the base.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fn_error_context::context;
use ostree::{gio, glib};

use crate::commit_metadata::DeploymentLayer;
use crate::error::UserError;
use crate::layer::Built;
use crate::layout::{Cache, State};
use crate::lockfile::Lockfile;
use crate::origin::Origin;
use crate::plan::{Current, InstallPlan};
use crate::progress::Progress;
use crate::repo::RepoOptions;
use crate::request::LocalFile;
use crate::workspace::Workspace;

/// What `compose` is asked to build.
#[derive(Debug, Clone)]
pub struct ComposeRequest {
    /// The archive-mode repo holding the base and receiving the layered commit.
    pub repo: PathBuf,
    /// The base: a ref or a commit of `repo`.
    pub base: String,
    /// The ref the layered commit goes to.
    pub refname: String,
    /// The request: packages, overrides, modules and skipped scripts (an origin file's
    /// `[packages]`, `[overrides]`, `[modules]`, `[pkglayer]`; its refspec is not read).
    pub origin: Origin,
    /// More packages to request (names, provides, paths), and local `.rpm` files: requested, or
    /// the files of the origin's (or lockfile's) local packages and replacements.
    pub packages: Vec<String>,
    /// Layer exactly this lockfile's packages (its base must be `base`).
    pub lockfile: Option<Lockfile>,
    /// The build machine's work folder: package cache repo, metadata and downloads, ID allocations.
    pub workdir: PathBuf,
    /// Which repos, and how fresh their metadata must be.
    pub repos: RepoOptions,
    /// Generate a static delta from the base to the layered commit.
    pub static_delta: bool,
}

/// What `compose` did.
#[derive(Debug)]
pub struct ComposeReport {
    /// The base commit.
    pub base_commit: String,
    /// The transaction as resolved.
    pub plan: InstallPlan,
    /// The layered commit now at the ref (the one there before when nothing changed).
    pub commit: String,
    /// `None` when the ref already held this layer: nothing was written.
    pub built: Option<Built>,
    /// Whether a static delta from the base was generated.
    pub static_delta: bool,
}

/// Builds the layer of `request` and writes it into the archive repo.
#[context("Composing {} on {}", request.refname, request.base)]
pub fn compose(request: &ComposeRequest, progress: &dyn Progress) -> Result<ComposeReport> {
    let target = open_target(&request.repo)?;
    pull_remote_base(&target, &request.base)?;
    let base_commit = target
        .resolve_rev(&request.base, true)?
        .ok_or_else(|| {
            UserError::new(format!(
                "{} has no ref or commit {}",
                request.repo.display(),
                request.base
            ))
            .hint("pull the base into it first (`ostree pull`), or give the ref it has (`ostree refs`)")
        })?
        .to_string();
    if let Some(lock) = &request.lockfile
        && lock.base.commit != base_commit
    {
        return Err(UserError::new(format!(
            "the lockfile's base is {}, {} is {base_commit}",
            lock.base.commit, request.base
        ))
        .hint("give the lockfile's base commit as the base")
        .into());
    }
    let workspace = open_workspace(&request.workdir)?;
    let work = workspace.repo();
    copy_commit(&work, &request.repo, &base_commit).context("Copying the base to the work repo")?;

    let (origin, local_files) = match &request.lockfile {
        Some(lock) => (
            lock.apply_to(request.origin.clone()),
            lock.local_files(&request.packages)?,
        ),
        None => with_packages(request.origin.clone(), &request.packages)?,
    };
    // What the ref holds now, if it is a layer of this base: an equal state digest is "no change".
    let previous = target
        .resolve_rev(&request.refname, true)?
        .map(|c| c.to_string());
    let current = match &previous {
        Some(commit) => {
            let layer = DeploymentLayer::read(&target, commit)?;
            if layer.base_commit == base_commit {
                Current::of_commit(&target, commit)?
            } else {
                Current::of_commit(&work, &base_commit)?
            }
        }
        None => Current::of_commit(&work, &base_commit)?,
    };
    let may_be_inactive: BTreeSet<String> = origin.requested.clone();
    let plan = crate::plan::plan(
        &workspace,
        &origin,
        &current,
        &base_commit,
        &request.repos,
        &local_files,
        &may_be_inactive,
        request.lockfile.as_ref(),
        progress,
    )?;
    if plan.unchanged
        && let Some(commit) = previous
    {
        return Ok(ComposeReport {
            base_commit,
            plan,
            commit,
            built: None,
            static_delta: false,
        });
    }
    let mut origin = origin;
    origin.requested = plan.requested.clone();
    let built = crate::layer::build(&workspace, &plan, &origin, progress)?;
    copy_commit(&target, &request.workdir.join("repo"), &built.commit)
        .context("Copying the layered commit to the archive repo")?;
    target
        .set_ref_immediate(
            None,
            &request.refname,
            Some(&built.commit),
            gio::Cancellable::NONE,
        )
        .with_context(|| format!("Setting ref {}", request.refname))?;
    let static_delta = request.static_delta && built.commit != base_commit;
    if static_delta {
        // libostree reads its parameters without checking for NULL: an empty dictionary.
        let params = glib::VariantDict::new(None).end();
        target
            .static_delta_generate(
                ostree::StaticDeltaGenerateOpt::Major,
                Some(&base_commit),
                &built.commit,
                None,
                Some(&params),
                gio::Cancellable::NONE,
            )
            .context("Generating the static delta from the base")?;
    }
    target
        .regenerate_summary(None, gio::Cancellable::NONE)
        .context("Updating the repo summary")?;
    Ok(ComposeReport {
        base_commit,
        commit: built.commit.clone(),
        plan,
        built: Some(built),
        static_delta,
    })
}

/// `origin` with `packages`: names requested, `.rpm` files read. A file the origin already names
/// (`requested-local=`, `replace-local=`, by sha256) only provides it; another is requested.
fn with_packages(mut origin: Origin, packages: &[String]) -> Result<(Origin, Vec<LocalFile>)> {
    let mut files = Vec::new();
    for package in packages {
        let path = Path::new(package);
        if !package.ends_with(".rpm") {
            origin.requested.insert(package.clone());
            continue;
        }
        if !path.is_file() {
            return Err(UserError::new(format!("local package {package}: no such file"))
                .hint("give the path of an existing .rpm file, or a package name to take from the repos")
                .into());
        }
        let file = crate::request::read_local_rpm(path)?;
        let named = origin
            .requested_local
            .values()
            .chain(origin.override_replace_local.values())
            .any(|sha256| *sha256 == file.sha256);
        if !named {
            origin
                .requested_local
                .insert(file.nevra.clone(), file.sha256.clone());
        }
        files.push(file);
    }
    Ok((origin, files))
}

/// A base given as `REMOTE:REF` that the archive repo has a remote for is pulled from it first
/// (its newest commit), so a build machine needs no copy of the vendor's repo made beforehand.
fn pull_remote_base(target: &ostree::Repo, base: &str) -> Result<()> {
    let Some((remote, refname)) = base.split_once(':') else {
        return Ok(());
    };
    let remotes: Vec<String> = target.remote_list().iter().map(|r| r.to_string()).collect();
    if !remotes.iter().any(|r| r == remote) {
        return Err(UserError::new(format!(
            "{base}: the archive repo has no remote {remote}"
        ))
        .hint(format!(
            "add it (`ostree --repo=REPO remote add {remote} URL`), or give a ref the repo has (`ostree refs`)"
        ))
        .into());
    }
    let options = glib::VariantDict::new(None);
    options.insert("refs", vec![refname.to_string()]);
    target
        .pull_with_options(remote, &options.end(), None, gio::Cancellable::NONE)
        .map_err(|err| {
            UserError::new(format!(
                "cannot pull {refname} from remote {remote}: {}",
                err.message()
            ))
            .hint("check the remote's URL (`ostree remote show-url`) and that it has the ref")
        })?;
    Ok(())
}

/// The archive repo compose writes to; another mode is refused (hosts pull archive repos over
/// HTTP).
fn open_target(path: &Path) -> Result<ostree::Repo> {
    let repo = ostree::Repo::new_for_path(path);
    repo.open(gio::Cancellable::NONE).map_err(|err| {
        UserError::new(format!(
            "{} is not an OSTree repo: {}",
            path.display(),
            err.message()
        ))
        .hint("give the archive repo holding the base (`ostree init --mode=archive` makes one)")
    })?;
    if repo.mode() != ostree::RepoMode::Archive {
        return Err(UserError::new(format!(
            "{} is not an archive-mode repo",
            path.display()
        ))
        .hint("hosts pull from archive repos over HTTP; `ostree init --mode=archive` makes one, `ostree pull-local` fills it")
        .into());
    }
    Ok(repo)
}

/// The build machine's work folder: a bare repo (made on first use), cache and state folders.
fn open_workspace(dir: &Path) -> Result<Workspace> {
    let repo_path = dir.join("repo");
    std::fs::create_dir_all(&repo_path)
        .with_context(|| format!("Creating {}", repo_path.display()))?;
    let repo = ostree::Repo::new_for_path(&repo_path);
    if repo_path.join("config").exists() {
        repo.open(gio::Cancellable::NONE)?;
    } else {
        repo.create(ostree::RepoMode::Bare, gio::Cancellable::NONE)
            .with_context(|| format!("Creating the work repo {}", repo_path.display()))?;
    }
    Ok(Workspace::new(
        repo,
        Cache::new(dir.join("cache")),
        State::new(dir.join("state")),
        None,
        Vec::new(),
    ))
}

/// Copies `commit` and its objects from the repo at `from` into `into` (only what `into` lacks).
fn copy_commit(into: &ostree::Repo, from: &Path, commit: &str) -> Result<()> {
    if into.has_object(ostree::ObjectType::Commit, commit, gio::Cancellable::NONE)?
        && into
            .load_commit(commit)
            .is_ok_and(|(_, state)| !state.contains(ostree::RepoCommitState::PARTIAL))
    {
        return Ok(());
    }
    let options = glib::VariantDict::new(None);
    options.insert("refs", vec![commit.to_string()]);
    let from = std::fs::canonicalize(from)?;
    into.pull_with_options(
        &format!("file://{}", from.display()),
        &options.end(),
        None,
        gio::Cancellable::NONE,
    )?;
    Ok(())
}
