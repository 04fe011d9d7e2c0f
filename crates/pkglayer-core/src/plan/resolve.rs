//! Resolving a request into packages: the base rpmdb (through a per-commit cache of its copy and
//! `.solv`), local RPM heads and the repos' metadata in one libsolv pool.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::InstallPlan;
use crate::error::UserError;
use crate::layout::CacheFolder;
use crate::lockfile::Lockfile;
use crate::modularity::{Activation, HostModules, Modularity, ModuleMetadata};
use crate::origin::Origin;
use crate::package_cache;
use crate::progress::{Phase, PhaseGuard, Progress};
use crate::repo::{Fetcher, RepoMetadata, RepoOptions};
use crate::solver::{
    LOCAL_REPO, ProblemKind, RepoSource, Request, Resolution, Resolver, SolveError,
};
use crate::workspace::Workspace;

/// Resolves the request of `origin` into `plan.packages`, with the repos it used. With a
/// `lockfile`, the requests are its packages' exact NEVRAs (weak dependencies ignored, module
/// filtering off: the lockfile already says which builds), and the result must be exactly them.
#[allow(clippy::too_many_arguments)]
pub(super) fn resolve(
    workspace: &Workspace,
    repo: &ostree::Repo,
    origin: &Origin,
    options: &RepoOptions,
    may_be_inactive: &BTreeSet<String>,
    lockfile: Option<&Lockfile>,
    plan: &mut InstallPlan,
    progress: &dyn Progress,
) -> Result<()> {
    // Local packages take part in resolution through their RPM heads: the file named now, or the
    // head kept in the package cache.
    let scratch = crate::scratch::create(repo, "plan")?;
    let mut local_heads = Vec::new();
    let mut replacement_heads = Vec::new();
    for (locals, heads, hint) in [
        (
            &origin.requested_local,
            &mut local_heads,
            "install it again from its .rpm file, or uninstall it",
        ),
        (
            &origin.override_replace_local,
            &mut replacement_heads,
            "replace it again from its .rpm file (`pkglayer override replace FILE`), or `pkglayer override reset` it",
        ),
    ] {
        for (nevra, sha256) in locals {
            if let Some(file) = plan.local_files.iter().find(|f| f.sha256 == *sha256) {
                heads.push(file.path.clone());
                continue;
            }
            let cached = package_cache::lookup_local(repo, nevra, sha256)?.ok_or_else(|| {
                UserError::new(format!("local package {nevra} is not in the package cache"))
                    .hint(hint)
            })?;
            let head = scratch.path().join(format!("{nevra}.rpm"));
            std::fs::write(&head, package_cache::head(repo, &cached.commit)?)?;
            heads.push(head);
        }
    }

    // Local packages alone need no repo (their dependencies may all be in the base).
    let sync = {
        let _phase = PhaseGuard::start(progress, Phase::Metadata);
        crate::repo::host::sync_metadata(
            workspace,
            options,
            &plan.base_commit,
            &Fetcher::new(),
            !plan.requested.is_empty(),
        )?
    };
    let modules = match lockfile {
        Some(_) => None,
        None => {
            let _phase = PhaseGuard::start(progress, Phase::Solve);
            activate_modules(workspace, repo, &plan.base_commit, &sync.repos, origin)?
        }
    };
    // resolve() checks each request on its own before solving, so an error names the one at fault.
    // A module profile's packages are requested too; the base may have them already.
    let mut requests: Vec<Request> = match lockfile {
        Some(lock) => lock
            .repo_requests()
            .into_iter()
            .map(|nevra| Request::new(nevra, false))
            .collect(),
        None => plan
            .requested
            .iter()
            .map(|spec| Request::new(spec.clone(), may_be_inactive.contains(spec)))
            .collect(),
    };
    if let Some(modules) = &modules {
        requests.extend(
            modules
                .profile_packages
                .iter()
                .filter(|name| !plan.requested.contains(*name))
                .map(|name| Request::new(name.clone(), true)),
        );
    }
    let resolve = |repos: &[RepoMetadata], with_filelists: bool| -> Result<Resolution> {
        let mut resolver = build_resolver(
            workspace,
            &local_heads,
            repo,
            &plan.base_commit,
            repos,
            with_filelists,
        )?;
        if let Some(modules) = &modules {
            let started = std::time::Instant::now();
            modules.filter(&mut resolver);
            tracing::debug!("module filtering took {:?}", started.elapsed());
        }
        let replacements: Vec<&Path> = replacement_heads.iter().map(PathBuf::as_path).collect();
        // A lockfile's remote replacements are its builds, not the repo's newest.
        let remote_replacements = match lockfile {
            Some(lock) => lock.pinned_remote_replacements(),
            None => origin.override_replace_remote.clone(),
        };
        resolver.override_base(&origin.override_remove, &replacements, &remote_replacements)?;
        resolver
            .resolve_requests(&requests, lockfile.is_some())
            .map_err(|err| explain_overrides(err, origin))
    };
    // Like dnf5, start from primary metadata alone: it lists the files other packages usually depend
    // on (/usr/bin, /etc, ...), and filelists cost more to fetch and load than everything else
    // together. Only a path that primary does not know brings them in, fetched then if need be.
    let mut repos = sync.repos;
    let solve = PhaseGuard::start(progress, Phase::Solve);
    let resolution = match resolve(&repos, false) {
        Err(err) if needs_filelists(&err) => {
            drop(solve);
            plan.filelists_fetched = {
                let _phase = PhaseGuard::start(progress, Phase::Metadata);
                crate::repo::metadata::fetch_filelists(
                    &mut repos,
                    options.freshness,
                    &Fetcher::new(),
                )?
            };
            let _phase = PhaseGuard::start(progress, Phase::Solve);
            resolve(&repos, true)
        }
        other => other,
    }
    .map_err(|err| match &modules {
        Some(modules) => modules.explain(err),
        None => err,
    })
    .map_err(|err| match lockfile {
        Some(_) => locked_not_found(err),
        None => err,
    })?;
    if let Some(lock) = lockfile {
        plan.locked_sha256 = lock.check(&resolution.packages)?;
    }
    plan.packages = resolution.packages;
    plan.requested_packages = resolution.requested;
    for erased in resolution.erased {
        match plan
            .packages
            .iter()
            .find(|p| p.nevra.name == erased.name && plan.requested_packages.contains(&p.nevra))
        {
            Some(new) => plan.replaced_base.push((erased, new.nevra.clone())),
            None => plan.removed_base.push(erased),
        }
    }
    plan.inactive_overrides = resolution.inactive_removals;
    plan.inactive_overrides.extend(
        resolution
            .inactive_replacements
            .iter()
            .map(ToString::to_string),
    );
    // A local RPM's size is its file's (the header's sizes describe the payload, not the file).
    for package in plan.packages.iter_mut().filter(|p| p.repo == LOCAL_REPO) {
        if let Some(file) = plan.local_files.iter().find(|f| f.nevra == package.nevra) {
            package.download_size = std::fs::metadata(&file.path)
                .map(|m| m.len())
                .unwrap_or(package.download_size);
        }
    }
    // A profile's package the base has is no request of the user's.
    plan.inactive_requests = resolution
        .inactive
        .into_iter()
        .map(|inactive| inactive.request)
        .filter(|request| plan.requested.contains(request))
        .collect();
    // As dnf does, a package another one obsoletes is replaced by it, and so is the request (a
    // local package that obsoletes it is requested already, as a local one).
    for obsoleted in resolution.obsoleted {
        plan.requested.remove(&obsoleted.request);
        if !origin.requested_local.contains_key(&obsoleted.obsoleted_by) {
            plan.requested.insert(obsoleted.obsoleted_by.name.clone());
        }
        plan.replaced_requests.push(obsoleted);
    }
    plan.repos = repos;
    plan.skipped_repos = sync.skipped;
    if let Some(modules) = modules {
        plan.active_modules = modules.activation.active;
        plan.module_problems = modules.activation.problems;
    }
    Ok(())
}

/// A resolution that failed while overrides remove or replace base packages: what the user can
/// do about the overrides, with the problems that name the packages involved.
fn explain_overrides(err: anyhow::Error, origin: &Origin) -> anyhow::Error {
    if !origin.has_overrides() {
        return err;
    }
    let Some(SolveError::Unsatisfiable { problems }) = err.downcast_ref::<SolveError>() else {
        return err;
    };
    let mut overridden: Vec<String> = origin.override_remove.iter().cloned().collect();
    overridden.extend(origin.override_replace_local.keys().map(|n| n.name.clone()));
    let problems: Vec<String> = problems.iter().map(|p| p.describe()).collect();
    UserError::new(format!(
        "the base packages removed or replaced ({}) are needed by other packages:\n  {}",
        overridden.join(", "),
        problems.join("\n  ")
    ))
    .hint("remove the packages that need them in the same command (`pkglayer override remove PKG…`), or leave the base packages they need in place")
    .into()
}

/// A lockfile's packages the repos do not have, named as such.
fn locked_not_found(err: anyhow::Error) -> anyhow::Error {
    match err.downcast_ref::<SolveError>() {
        Some(SolveError::NotFound { requests }) => {
            let names: Vec<&str> = requests.iter().map(|r| r.spec.as_str()).collect();
            UserError::new(format!(
                "the enabled repos no longer have these packages of the lockfile: {}",
                names.join(", ")
            ))
            .hint("enable a repo that still has them (--enablerepo, --reposdir), or write a new lockfile with `pkglayer lock` on a host layered from today's repos")
            .into()
        }
        _ => err,
    }
}

/// What modularity makes of the repos for a resolution.
pub(crate) struct ModuleResolution {
    activation: Activation,
    /// The packages the origin's `install=` profiles ask for.
    profile_packages: BTreeSet<String>,
    /// Repos with `module_hotfixes=1`.
    hotfix_repos: Vec<String>,
}

impl ModuleResolution {
    /// `err` with, for each request that matched nothing, the streams that are not active and
    /// have a package of its name.
    fn explain(&self, mut err: anyhow::Error) -> anyhow::Error {
        if let Some(SolveError::NotFound { requests }) = err.downcast_mut::<SolveError>() {
            for request in requests {
                if let Some(streams) = self.activation.inactive_streams.get(&request.spec) {
                    request.in_module_streams = streams.iter().cloned().collect();
                }
            }
        }
        err
    }

    /// Hides from `resolver` what module filtering hides.
    pub(crate) fn filter(&self, resolver: &mut Resolver) {
        let hotfix: Vec<&str> = self.hotfix_repos.iter().map(String::as_str).collect();
        resolver.filter_modules(&self.activation.filter, &hotfix);
    }
}

/// Reads the repos' module metadata and activates the streams the host (the current deployment's
/// `/etc/dnf`), the origin and the defaults want, on the platform of `base_commit`'s os-release. None
/// when the repos carry no modules and the origin asks for none.
pub(crate) fn activate_modules(
    workspace: &Workspace,
    repo: &ostree::Repo,
    base_commit: &str,
    repos: &[RepoMetadata],
    origin: &Origin,
) -> Result<Option<ModuleResolution>> {
    let mut metadata = ModuleMetadata::default();
    let cache_dir = workspace.cache().folder(CacheFolder::Solv);
    std::fs::create_dir_all(&cache_dir)
        .with_context(|| format!("Creating {}", cache_dir.display()))?;
    for source in repos {
        if let Some(path) = &source.modules {
            let cache = cache_dir.join(format!("{}-{}.modules.json", source.id, source.checksum));
            metadata.extend(
                crate::modularity::modulemd::read_cached(path, &source.id, &cache).map_err(|err| {
                    UserError::new(format!(
                        "the module metadata of repo {} is malformed: {err:#}",
                        source.id
                    ))
                    .hint("`pkglayer refresh-md --force` fetches it again; if that does not help, the repo itself is broken")
                })?,
            );
        }
    }
    if metadata.streams.is_empty() && origin.modules.is_empty() {
        return Ok(None);
    }
    let host = match workspace.etc() {
        Some(etc) => HostModules::read(&etc.join("dnf"))?,
        None => HostModules::default(),
    };
    let platform = crate::tree::os_release_field(repo, base_commit, "PLATFORM_ID")?
        .as_deref()
        .and_then(crate::modularity::parse_platform);
    let mut modularity = Modularity::new(metadata, host, platform);
    let profile_packages = modularity.apply_requests(&origin.modules)?;
    let activation = modularity.activate(std::env::consts::ARCH);
    tracing::debug!(
        "active module streams: {:?}; hiding {} builds' packages and the names {:?}",
        activation.active,
        activation.filter.exclude.len(),
        activation.filter.names
    );
    Ok(Some(ModuleResolution {
        activation,
        profile_packages,
        hotfix_repos: repos
            .iter()
            .filter(|r| r.module_hotfixes)
            .map(|r| r.id.clone())
            .collect(),
    }))
}

/// A resolver over the base rpmdb and the repos' metadata, with or without filelists.
fn build_resolver(
    workspace: &Workspace,
    local_heads: &[PathBuf],
    repo: &ostree::Repo,
    base_commit: &str,
    repos: &[RepoMetadata],
    with_filelists: bool,
) -> Result<Resolver> {
    let mut resolver = Resolver::new(std::env::consts::ARCH);
    add_base(&mut resolver, workspace, repo, base_commit)?;
    if !local_heads.is_empty() {
        let paths: Vec<&Path> = local_heads.iter().map(PathBuf::as_path).collect();
        resolver.add_local_rpms(&paths)?;
    }
    add_repos(&mut resolver, workspace, repos, with_filelists)?;
    Ok(resolver)
}

/// Adds the repos' metadata to `resolver`, with or without filelists, through the `.solv` caches.
pub(crate) fn add_repos(
    resolver: &mut Resolver,
    workspace: &Workspace,
    repos: &[RepoMetadata],
    with_filelists: bool,
) -> Result<()> {
    let solv_dir = workspace.cache().folder(CacheFolder::Solv);
    std::fs::create_dir_all(&solv_dir)
        .with_context(|| format!("Creating {}", solv_dir.display()))?;
    for metadata in repos {
        let filelists = metadata.filelists.clone().filter(|_| with_filelists);
        let suffix = if filelists.is_some() {
            "-filelists"
        } else {
            ""
        };
        resolver.add_repo(&RepoSource {
            id: metadata.id.clone(),
            primary: metadata.primary.clone(),
            solv_cache: Some(solv_dir.join(format!(
                "{}-{}{suffix}.solv",
                metadata.id, metadata.checksum
            ))),
            filelists,
            priority: metadata.priority,
            cost: metadata.cost,
            exclude: metadata.exclude.clone(),
            includepkgs: metadata.includepkgs.clone(),
        })?;
    }
    Ok(())
}

/// Whether a failed resolution could succeed with filelists: a path request or a path dependency
/// that nothing in primary provides.
fn needs_filelists(err: &anyhow::Error) -> bool {
    match err.downcast_ref::<SolveError>() {
        Some(SolveError::NotFound { requests }) => requests.iter().any(|r| r.spec.starts_with('/')),
        Some(SolveError::Unsatisfiable { problems }) => problems.iter().any(|p| {
            matches!(&p.kind, ProblemKind::NothingProvides(dependency) if dependency.starts_with('/'))
        }),
        _ => false,
    }
}

/// Adds the base commit's rpmdb to the resolver, through a per-commit cache of its copy and `.solv`.
fn add_base(
    resolver: &mut Resolver,
    workspace: &Workspace,
    repo: &ostree::Repo,
    base_commit: &str,
) -> Result<()> {
    let folder = workspace.cache().folder(CacheFolder::BaseRpmdb);
    let dir = folder.join(base_commit);
    let root = dir.join("root");
    let solv = dir.join("rpmdb.solv");
    if !solv.exists() && !root.exists() {
        // Dry runs take no lock: another process may be making the same copy. Each works in a
        // folder of its own; the first rename wins and the others' copies go.
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("Creating {}", folder.display()))?;
        let partial = tempfile::Builder::new()
            .prefix(".partial-")
            .tempdir_in(&folder)
            .with_context(|| format!("Creating a folder in {}", folder.display()))?;
        crate::rpmdb::checkout_rpmdb(repo, base_commit, &partial.path().join("root"))?;
        if let Err(err) = std::fs::rename(partial.path(), &dir)
            && !root.exists()
        {
            return Err(err).with_context(|| format!("Creating {}", dir.display()));
        }
    }
    resolver.add_base_rpmdb(&root, Some(&solv))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::Problem;

    fn unsatisfiable(nothing_provides: Option<&str>) -> anyhow::Error {
        SolveError::Unsatisfiable {
            problems: vec![Problem {
                text: "nothing provides it needed by app-1.0-1.x86_64".into(),
                kind: nothing_provides.map_or(ProblemKind::Other, |dep| {
                    ProblemKind::NothingProvides(dep.into())
                }),
                requests: vec!["app".into()],
            }],
        }
        .into()
    }

    fn not_found(spec: &str) -> SolveError {
        SolveError::NotFound {
            requests: vec![crate::solver::UnknownRequest {
                spec: spec.into(),
                did_you_mean: Vec::new(),
                in_module_streams: Vec::new(),
            }],
        }
    }

    #[test]
    fn only_a_path_nothing_provides_needs_filelists() {
        let path_request: anyhow::Error = not_found("/usr/bin/x").into();
        assert!(needs_filelists(&path_request));
        let name_request: anyhow::Error = not_found("x").into();
        assert!(!needs_filelists(&name_request));

        assert!(needs_filelists(&unsatisfiable(Some("/usr/lib/libx.so"))));
        assert!(!needs_filelists(&unsatisfiable(Some("libx"))));
        assert!(!needs_filelists(&unsatisfiable(None)));

        let in_base: anyhow::Error = SolveError::AlreadyInBase {
            request: "/bin/sh".into(),
            package: "bash-5.2-1.x86_64".into(),
        }
        .into();
        assert!(!needs_filelists(&in_base));
        assert!(!needs_filelists(&anyhow::anyhow!("/usr/bin/x: not found")));
    }

    #[test]
    fn needs_filelists_looks_through_context() {
        let err = anyhow::Error::from(not_found("/usr/bin/x")).context("Resolving");
        assert!(needs_filelists(&err));
    }
}
