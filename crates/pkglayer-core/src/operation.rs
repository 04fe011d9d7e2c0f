//! The verbs that change the next boot, each one transaction: take the sysroot lock, load the
//! deployments and the origin, plan, apply, and return what happened for the caller to render.
//!
//! The state is loaded only once the lock is held: an operation that waited for another one builds
//! on what that one deployed, so two operations run at once both take effect. Dry runs take no lock
//! and write nothing but caches.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Result;

use crate::base::{self, BaseFetch};
use crate::error::UserError;
use crate::layer::{self, ApplyOptions, Outcome};
use crate::origin::Origin;
use crate::plan::{self, Current, InstallPlan};
use crate::progress::Progress;
use crate::repo::Freshness;
use crate::repo::RepoOptions;
use crate::request;
use crate::rpm::Nevra;
use crate::sysroot::{Sysroot, SysrootLock};

pub use crate::deploy::{CleanupOutcome, CleanupRequest, cleanup, rollback};
pub use crate::retention::{Released, clean as clean_cache};

/// How a transaction runs, whatever it changes.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A directory of `*.repo` files instead of the deployment's `/etc/yum.repos.d`.
    pub reposdir: Option<PathBuf>,
    /// Globs of repo ids to disable (`--disablerepo`), then to enable (`--enablerepo`).
    pub disable_repos: Vec<String>,
    /// See `disable_repos`.
    pub enable_repos: Vec<String>,
    /// `$releasever` instead of the base's os-release `VERSION_ID`.
    pub releasever: Option<String>,
    /// Plan and report; change nothing (no lock, no import, no deployment).
    pub dry_run: bool,
    /// Never open a connection: cached metadata, packages and base only.
    pub cache_only: bool,
    /// Fetch and import what the transaction needs; deploy nothing.
    pub download_only: bool,
    /// Layer exactly this lockfile's packages (`--lockfile`), or fail naming what cannot be had.
    pub lockfile: Option<crate::lockfile::Lockfile>,
}

/// What `install` adds to the request.
#[derive(Debug, Clone, Default)]
pub struct InstallRequest {
    /// Names, provides, file paths, or paths of local `*.rpm` files.
    pub packages: Vec<String>,
    /// Accept packages that are already requested.
    pub idempotent: bool,
    /// Accept packages the base already provides (recorded as inactive requests).
    pub allow_inactive: bool,
    /// Packages whose scripts and file triggers never run.
    pub skip_scripts: Vec<String>,
}

/// What a transaction planned and what came of it.
#[derive(Debug)]
pub struct Report {
    /// The transaction as resolved: request, packages added and removed, repos used.
    pub plan: InstallPlan,
    /// `None` for a dry run.
    pub outcome: Option<Outcome>,
    /// After a deploy: the new deployment's packages against the booted one (else the one the
    /// operation built on), base included, as rpm-ostree prints them.
    pub changes: Option<DeployedChanges>,
}

/// The packages a new deployment changes against another one.
#[derive(Debug)]
pub struct DeployedChanges {
    /// The deployment compared with (`checksum.serial`).
    pub against: String,
    /// Whether that is the running system (then a reboot starts the new one).
    pub booted: bool,
    /// What differs, base packages included.
    pub diff: crate::rpmdb::PackageDiff,
}

impl Report {
    /// Whether the transaction left (or, dry, would leave) the next boot as it was.
    pub fn unchanged(&self) -> bool {
        match &self.outcome {
            None => self.plan.unchanged,
            Some(outcome) => !matches!(outcome, Outcome::Deployed { .. }),
        }
    }
}

/// The base an upgrade found.
#[derive(Debug, Clone)]
pub struct BaseChange {
    /// What the origin follows.
    pub refspec: String,
    /// The base under the deployment the upgrade builds on.
    pub current: String,
    /// The `version` of `current`, if its commit has one.
    pub current_version: Option<String>,
    /// The newest commit of the refspec.
    pub newest: String,
    /// The `version` of `newest`, if its commit has one.
    pub newest_version: Option<String>,
}

impl BaseChange {
    /// Whether the newest base is another commit than the current one.
    pub fn is_update(&self) -> bool {
        self.current != self.newest
    }
}

/// What `upgrade` found and did.
#[derive(Debug)]
pub struct UpgradeReport {
    /// The current and the newest base.
    pub base: BaseChange,
    /// The layer on the newest base; `None` for `--check` and dry runs when only the new base's
    /// commit object was fetched (its packages resolve once the base is pulled).
    pub transaction: Option<Report>,
}

impl UpgradeReport {
    /// Whether anything newer was found: a base, or (same base) newer layered packages.
    pub fn update_available(&self) -> bool {
        self.base.is_update() || self.transaction.as_ref().is_some_and(|t| !t.plan.unchanged)
    }
}

/// The state a transaction starts from, loaded under the lock (or for a dry run, without it).
struct Start<'a> {
    lock: Option<SysrootLock<'a>>,
    origin: Origin,
    current: Current,
    /// `checksum.serial` of the deployment the operation builds on.
    built_on: String,
}

impl<'a> Start<'a> {
    fn load(sysroot: &'a Sysroot, options: &Options, verb: &str) -> Result<Self> {
        let lock = if options.dry_run {
            None
        } else {
            let lock = sysroot.lock(verb)?;
            crate::failpoint::hit("after-lock");
            // Another operation may have deployed while we waited: build on what is there now.
            sysroot.reload()?;
            Some(lock)
        };
        let latest = sysroot.latest();
        let origin = sysroot.origin(&latest)?;
        Ok(Start {
            current: Current::of_deployment(&sysroot.repo(), &latest.csum(), &origin)?,
            origin,
            built_on: crate::deploy::deployment_id(&latest),
            lock,
        })
    }

    fn lock(&self) -> &SysrootLock<'a> {
        self.lock
            .as_ref()
            .expect("only a dry run has no lock, and it applies nothing")
    }
}

/// `install`: the request plus `request.packages`, layered on the current base.
pub fn install(
    sysroot: &Sysroot,
    request: &InstallRequest,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report> {
    let start = Start::load(sysroot, options, "install")?;
    let repos = repo_options(options, Freshness::WhileFresh);
    if let Some(lock) = &options.lockfile {
        if lock.base.commit != start.current.layer.base_commit {
            return Err(UserError::new(format!(
                "the lockfile's base is {}, this deployment's is {}",
                lock.base.commit, start.current.layer.base_commit
            ))
            .hint("`pkglayer upgrade --lockfile FILE` moves to the lockfile's base and layer")
            .into());
        }
        let mut change = Change::locked(start.origin.clone(), lock, lock.base.commit.clone());
        change.local_files = lock.local_files(&request.packages)?;
        return transact(sysroot, &start, change, &repos, options, progress);
    }
    let (mut origin, local_files) = request::with_packages(
        sysroot,
        &start.current.layer,
        start.origin.clone(),
        &request.packages,
        request.idempotent,
        &repos,
    )?;
    origin
        .skip_scripts
        .extend(request.skip_scripts.iter().cloned());
    let mut may_be_inactive = start.origin.requested.clone();
    if request.allow_inactive {
        may_be_inactive.extend(request.packages.iter().cloned());
    }
    let change = Change {
        origin,
        base_commit: start.current.layer.base_commit.clone(),
        local_files,
        may_be_inactive,
    };
    transact(sysroot, &start, change, &repos, options, progress)
}

/// `uninstall`: the request without `names` (or without anything, with `all`).
pub fn uninstall(
    sysroot: &Sysroot,
    names: &[String],
    all: bool,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report> {
    let start = Start::load(sysroot, options, "uninstall")?;
    let origin = request::without_packages(
        sysroot,
        &start.current.layer,
        start.origin.clone(),
        names,
        all,
    )?;
    transact_on_current_base(sysroot, &start, origin, options, progress)
}

/// What `override` does to the base (rpm-ostree's `override remove|replace|reset`).
#[derive(Debug, Clone)]
pub enum OverrideAction {
    /// Go without the base packages `names`, and layer `install` in the same transaction.
    Remove {
        /// Names of base packages.
        names: Vec<String>,
        /// Packages to install, as `install` takes them.
        install: Vec<String>,
    },
    /// Replace base packages by the local RPM files `files` (each the package of its name).
    ReplaceLocal {
        /// Paths of `*.rpm` files.
        files: Vec<String>,
    },
    /// Replace base packages `names` by the newest builds repo `from` (`repo=ID`) offers.
    ReplaceRemote {
        /// `repo=ID`.
        from: String,
        /// Names of base packages.
        names: Vec<String>,
    },
    /// Drop the overrides of `names` (every override with `all`): the base's packages again.
    Reset {
        /// Names of overridden base packages.
        names: Vec<String>,
        /// Every override.
        all: bool,
    },
}

/// `override`: the origin's `[overrides]` changed by `action`, layered on the current base.
pub fn override_base(
    sysroot: &Sysroot,
    action: &OverrideAction,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report> {
    let start = Start::load(sysroot, options, "override")?;
    let repos = repo_options(options, Freshness::WhileFresh);
    let layer = &start.current.layer;
    let (origin, local_files) = match action {
        OverrideAction::Remove { names, install } => {
            let origin =
                crate::overrides::with_removals(sysroot, layer, start.origin.clone(), names)?;
            request::with_packages(sysroot, layer, origin, install, false, &repos)?
        }
        OverrideAction::ReplaceLocal { files } => crate::overrides::with_local_replacements(
            sysroot,
            layer,
            start.origin.clone(),
            files,
            &repos,
        )?,
        OverrideAction::ReplaceRemote { from, names } => (
            crate::overrides::with_remote_replacements(
                sysroot,
                layer,
                start.origin.clone(),
                from,
                names,
            )?,
            Vec::new(),
        ),
        OverrideAction::Reset { names, all } => (
            crate::overrides::without_overrides(start.origin.clone(), names, *all)?,
            Vec::new(),
        ),
    };
    let change = Change {
        origin,
        base_commit: layer.base_commit.clone(),
        local_files,
        may_be_inactive: start.origin.requested.clone(),
    };
    transact(sysroot, &start, change, &repos, options, progress)
}

/// `reset`: the vendor's tree again: without layered packages (`overlays`), without overrides
/// (`overrides`); neither flag means both.
pub fn reset(
    sysroot: &Sysroot,
    overlays: bool,
    overrides: bool,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report> {
    let start = Start::load(sysroot, options, "reset")?;
    let (overlays, overrides) = if overlays || overrides {
        (overlays, overrides)
    } else {
        (true, true)
    };
    let mut origin = start.origin.clone();
    if overlays {
        origin.requested.clear();
        origin.requested_local.clear();
        origin.modules = Default::default();
    }
    if overrides {
        origin.override_remove.clear();
        origin.override_replace_local.clear();
    }
    transact_on_current_base(sysroot, &start, origin, options, progress)
}

/// What `deploy` and `rebase` found: the base they move to, and the layer on it.
#[derive(Debug)]
pub struct BaseMove {
    /// The refspec followed before and after.
    pub from_refspec: String,
    /// See `from_refspec`.
    pub to_refspec: String,
    /// The base commit, and its version.
    pub commit: String,
    /// Its `version`, if any.
    pub version: Option<String>,
    /// The layer on it (with the same packages and overrides).
    pub transaction: Report,
}

/// `deploy VERSION|COMMIT`: the base pinned to a commit of the refspec's history (by checksum or
/// by its `version`), as rpm-ostree's `override-commit=`; layered packages and overrides kept.
/// `upgrade` unpins.
pub fn deploy(
    sysroot: &Sysroot,
    target: &str,
    options: &Options,
    progress: &dyn Progress,
) -> Result<BaseMove> {
    let start = Start::load(sysroot, options, "deploy")?;
    let commit = base::find_in_history(sysroot, &start.origin, target, options.cache_only)?;
    let mut origin = start.origin.clone();
    origin.override_commit = Some(commit.clone());
    move_base(sysroot, &start, origin, commit, options, progress)
}

/// `rebase REFSPEC`: follow another ref (`REMOTE:REF`, or a `REF` of the same remote), on its
/// newest commit; layered packages and overrides kept, a pinned commit dropped.
pub fn rebase(
    sysroot: &Sysroot,
    refspec: &str,
    options: &Options,
    progress: &dyn Progress,
) -> Result<BaseMove> {
    let start = Start::load(sysroot, options, "rebase")?;
    let mut origin = start.origin.clone();
    origin.refspec = match (refspec.contains(':'), start.origin.remote()) {
        (false, Some(remote)) => format!("{remote}:{refspec}"),
        _ => refspec.to_string(),
    };
    origin.override_commit = None;
    let fetch = if options.cache_only {
        BaseFetch::Local
    } else {
        BaseFetch::Pull
    };
    let commit = base::newest_base(sysroot, &origin, fetch)?;
    move_base(sysroot, &start, origin, commit, options, progress)
}

fn move_base(
    sysroot: &Sysroot,
    start: &Start,
    origin: Origin,
    commit: String,
    options: &Options,
    progress: &dyn Progress,
) -> Result<BaseMove> {
    let repos = repo_options(options, Freshness::Refresh);
    let change = Change {
        base_commit: commit.clone(),
        local_files: Vec::new(),
        may_be_inactive: start.origin.requested.clone(),
        origin: origin.clone(),
    };
    let transaction = transact(sysroot, start, change, &repos, options, progress)?;
    Ok(BaseMove {
        from_refspec: start.origin.refspec.clone(),
        to_refspec: origin.refspec,
        version: base::version_of(&sysroot.repo(), &commit)?,
        commit,
        transaction,
    })
}

/// What `module` does to the origin's module requests (rpm-ostree's `ex module`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleAction {
    /// Enable streams (`name:stream`): their packages become visible to resolution.
    Enable,
    /// Drop streams this host's origin enabled.
    Disable,
    /// Enable streams and layer a profile's packages (`name:stream/profile`).
    Install,
    /// Drop profiles this host's origin installed, and the packages only they asked for.
    Uninstall,
}

/// `module`: the origin's `[modules]` changed by `action` for `specs`, layered on the current base.
pub fn module(
    sysroot: &Sysroot,
    action: ModuleAction,
    specs: &[String],
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report> {
    let start = Start::load(sysroot, options, "module")?;
    let mut origin = start.origin.clone();
    let modules = &mut origin.modules;
    let (list, adding, key) = match action {
        ModuleAction::Enable => (&mut modules.enable, true, "enabled"),
        ModuleAction::Disable => (&mut modules.enable, false, "enabled"),
        ModuleAction::Install => (&mut modules.install, true, "installed"),
        ModuleAction::Uninstall => (&mut modules.install, false, "installed"),
    };
    for spec in specs {
        if adding && !list.insert(spec.clone()) {
            return Err(UserError::new(format!("module {spec} is {key} already"))
                .hint("nothing to do for it; leave it out")
                .into());
        }
        if !adding && !list.remove(spec) {
            let listed: Vec<&str> = list.iter().map(String::as_str).collect();
            return Err(UserError::new(format!(
                "module {spec} was not {key} with pkglayer on this deployment"
            ))
            .hint(if listed.is_empty() {
                format!("no module is {key} with pkglayer here")
            } else {
                format!("{key}: {}", listed.join(", "))
            })
            .into());
        }
    }
    transact_on_current_base(sysroot, &start, origin, options, progress)
}

/// `upgrade`: the vendor's newest base and the newest layered packages, in one deployment. With
/// `check`, only says whether there is one (fetching just the new base's commit object).
pub fn upgrade(
    sysroot: &Sysroot,
    check: bool,
    options: &Options,
    progress: &dyn Progress,
) -> Result<UpgradeReport> {
    let options = Options {
        dry_run: options.dry_run || check,
        ..options.clone()
    };
    let start = Start::load(sysroot, &options, "upgrade")?;
    if let Some(state) = &start.origin.unconfigured_state {
        return Err(UserError::new(state.clone())
            .hint("the host must be set up (registered) before it can upgrade")
            .into());
    }
    // A dry run (and `--check`) fetches only the new base's commit object: enough to say what it
    // is, without downloading an OS it was told not to deploy.
    let fetch = if options.cache_only {
        BaseFetch::Local
    } else if options.dry_run {
        BaseFetch::CommitOnly
    } else {
        BaseFetch::Pull
    };
    let repo = sysroot.repo();
    let current = start.current.layer.base_commit.clone();
    // A base pinned by `deploy` is unpinned: upgrade follows the refspec again.
    let mut unpinned = start.origin.clone();
    unpinned.override_commit = None;
    let newest = match &options.lockfile {
        Some(lock) => {
            base::pull_commit(sysroot, &unpinned, &lock.base.commit, fetch)?;
            lock.base.commit.clone()
        }
        None => base::newest_base(sysroot, &unpinned, fetch)?,
    };
    let base = BaseChange {
        refspec: start.origin.refspec.clone(),
        current_version: base::version_of(&repo, &current)?,
        newest_version: base::version_of(&repo, &newest)?,
        current,
        newest,
    };
    // A lockfile names its base: going there is what was asked, even to an older one.
    if options.lockfile.is_none() {
        base::refuse_older(&repo, &base.current, &base.newest, &base.refspec)?;
    }
    if fetch == BaseFetch::CommitOnly && base.is_update() {
        return Ok(UpgradeReport {
            base,
            transaction: None,
        });
    }
    // Like rpm-ostree, an upgrade asks every repo whether it changed (a repomd.xml each).
    let repos = repo_options(&options, Freshness::Refresh);
    let change = match &options.lockfile {
        // The lockfile's base replaces a pin too.
        Some(lock) => Change::locked(unpinned, lock, base.newest.clone()),
        None => Change {
            origin: unpinned,
            base_commit: base.newest.clone(),
            local_files: Vec::new(),
            may_be_inactive: start.origin.requested.clone(),
        },
    };
    let transaction = transact(sysroot, &start, change, &repos, &options, progress)?;
    Ok(UpgradeReport {
        base,
        transaction: Some(transaction),
    })
}

/// What a transaction asks for: a request on a base.
struct Change {
    /// The origin after the operation (its request).
    origin: Origin,
    base_commit: String,
    /// Local RPM files this operation names, imported when it is applied.
    local_files: Vec<request::LocalFile>,
    /// Requests the base may satisfy: those made before (a new base may absorb them), and new
    /// ones with `--allow-inactive`.
    may_be_inactive: BTreeSet<String>,
}

impl Change {
    /// The lockfile's layer on `base_commit`: its request replaces `origin`'s.
    fn locked(origin: Origin, lock: &crate::lockfile::Lockfile, base_commit: String) -> Self {
        let origin = lock.apply_to(origin);
        Change {
            may_be_inactive: origin.requested.clone(),
            origin,
            base_commit,
            local_files: Vec::new(),
        }
    }
}

/// [`transact`] with `origin` (the operation's edit of the start's) on the current base, the
/// requests made before allowed to be inactive, no local file named: what most verbs do.
fn transact_on_current_base(
    sysroot: &Sysroot,
    start: &Start,
    origin: Origin,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report> {
    let change = Change {
        origin,
        base_commit: start.current.layer.base_commit.clone(),
        local_files: Vec::new(),
        may_be_inactive: start.origin.requested.clone(),
    };
    let repos = repo_options(options, Freshness::WhileFresh);
    transact(sysroot, start, change, &repos, options, progress)
}

/// Plans the change and, unless a dry run, applies it.
fn transact(
    sysroot: &Sysroot,
    start: &Start,
    change: Change,
    repos: &RepoOptions,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report> {
    let Change {
        mut origin,
        base_commit,
        local_files,
        may_be_inactive,
    } = change;
    let mut plan = plan::plan(
        &sysroot.workspace(),
        &origin,
        &start.current,
        &base_commit,
        repos,
        &local_files,
        &may_be_inactive,
        options.lockfile.as_ref(),
        progress,
    )?;
    // The plan replaces obsoleted requests by what obsoletes them.
    origin.requested = plan.requested.clone();
    // The same tree on another ref (rebase) or newly pinned (deploy) is still a new deployment:
    // its origin differs.
    if origin.refspec != start.origin.refspec
        || (origin.override_commit.is_some()
            && origin.override_commit != start.origin.override_commit)
    {
        plan.unchanged = false;
    }
    if options.dry_run {
        return Ok(Report {
            plan,
            outcome: None,
            changes: None,
        });
    }
    let apply = ApplyOptions {
        download_only: options.download_only,
    };
    let outcome = layer::apply(sysroot, start.lock(), &plan, &origin, apply, progress)?;
    let changes = match &outcome {
        Outcome::Deployed { .. } => Some(deployed_changes(sysroot, start, &plan)?),
        _ => None,
    };
    Ok(Report {
        plan,
        outcome: Some(outcome),
        changes,
    })
}

/// The new deployment of `plan` against the booted deployment, or without one (an offline
/// sysroot) against the one the operation built on. When both have the same base, the layers tell
/// everything; otherwise both bases' rpm databases are read.
fn deployed_changes(
    sysroot: &Sysroot,
    start: &Start,
    plan: &InstallPlan,
) -> Result<DeployedChanges> {
    let repo = sysroot.repo();
    let (against, booted, layer) = match sysroot.booted() {
        Some(booted) => {
            let layer = crate::commit_metadata::DeploymentLayer::of_deployment(
                &repo,
                &booted.csum(),
                &sysroot.origin(&booted)?,
            )?;
            (crate::deploy::deployment_id(&booted), true, layer)
        }
        None => (start.built_on.clone(), false, start.current.layer.clone()),
    };
    let new: Vec<Nevra> = plan.packages.iter().map(|p| p.nevra.clone()).collect();
    let overrides = !layer.base_removals.is_empty()
        || !layer.base_replacements.is_empty()
        || !plan.removed_base.is_empty()
        || !plan.replaced_base.is_empty();
    let diff = if layer.base_commit == plan.base_commit && !overrides {
        crate::rpmdb::diff(&layer.packages, &new)
    } else {
        // Each side: its base without the base packages it removes or replaces, plus its layer.
        let old_gone: Vec<&Nevra> = layer
            .base_removals
            .iter()
            .chain(layer.base_replacements.iter().map(|(old, _)| old))
            .collect();
        let mut old = crate::rpmdb::packages_in_commit(&repo, &layer.base_commit)?;
        old.retain(|n| !old_gone.contains(&n));
        old.extend(layer.packages.iter().cloned());
        let new_gone: Vec<&Nevra> = plan
            .removed_base
            .iter()
            .chain(plan.replaced_base.iter().map(|(old, _)| old))
            .collect();
        let mut all = crate::rpmdb::packages_in_commit(&repo, &plan.base_commit)?;
        all.retain(|n| !new_gone.contains(&n));
        all.extend(new);
        crate::rpmdb::diff(&old, &all)
    };
    Ok(DeployedChanges {
        against,
        booted,
        diff,
    })
}

fn repo_options(options: &Options, freshness: Freshness) -> RepoOptions {
    RepoOptions {
        reposdir: options.reposdir.clone(),
        disable: options.disable_repos.clone(),
        enable: options.enable_repos.clone(),
        releasever: options.releasever.clone(),
        freshness: if options.cache_only {
            Freshness::CacheOnly
        } else {
            freshness
        },
    }
}
