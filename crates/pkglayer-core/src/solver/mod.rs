//! Dependency resolution with libsolv, against the base tree's rpm database.
//!
//! The installed set is the *base* commit's rpmdb, every base package locked: layering adds packages,
//! it never changes or removes what the vendor shipped. Requests are matched the way dnf matches them
//! (name, provide, file path, `name.arch`, `name-version`, NEVRA).
//!
//! Every operation resolves the whole request again on the base, so a layered package is never
//! "installed" here: a request is what `dnf install` would make of it on the bare base. Two outcomes
//! besides packages come back, for the caller to keep the request list true:
//!
//! - **inactive** requests, which the base already satisfies (the vendor may have added the package
//!   to the image since it was requested);
//! - **obsoleted** requests, whose package the repos replace with another one (`Obsoletes:`).

#[allow(unsafe_code)]
mod libsolv;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::UserError;
use crate::modularity::ModuleFilter;
use crate::repo::Checksum;
use crate::rpm::Nevra;
use libsolv::{Matched, Pool, Selection, SolvableInfo, SolveResult};
pub(crate) use libsolv::{ModuleChoice, ModuleJob, ModuleSolvable};
pub use libsolv::{Problem, ProblemKind};

/// The repo name local RPM files get, as in dnf.
pub const LOCAL_REPO: &str = "@commandline";

/// A package the transaction installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPackage {
    /// Which package.
    pub nevra: Nevra,
    /// The id of the repo it comes from.
    pub repo: String,
    /// Size of the RPM file, in bytes.
    pub download_size: u64,
    /// Size of its installed files, in bytes.
    pub install_size: u64,
    /// Path of the RPM relative to the repo's base URL.
    pub location: Option<String>,
    /// The RPM's checksum in the repo metadata.
    pub checksum: Option<Checksum>,
}

#[cfg(test)]
impl PlannedPackage {
    /// `strace-6.1-1.x86_64` from repo `fedora`, 6 bytes at `Packages/s/…`, for tests.
    pub(crate) fn example(checksum: Option<Checksum>) -> Self {
        PlannedPackage {
            nevra: Nevra::parse("strace-6.1-1.x86_64").unwrap(),
            repo: "fedora".into(),
            download_size: 6,
            install_size: 6,
            location: Some("Packages/s/strace-6.1-1.x86_64.rpm".into()),
            checksum,
        }
    }
}

/// A package `search` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The newest of its name.
    pub nevra: Nevra,
    /// The id of the repo it comes from.
    pub repo: String,
    /// Its one-line description.
    pub summary: String,
    /// Whether its name holds every term (not only its summary).
    pub name_matched: bool,
}

/// One requested package spec, and whether the base may already satisfy it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// As the user typed it: a name, a provide, a path, `name.arch`, `name-version`, NEVRA, or
    /// `name OP version`.
    pub spec: String,
    /// Whether it may be *inactive* (satisfied by the base, layering nothing). Requests already in
    /// the origin before an operation always may: the vendor's new base can absorb them. A new one
    /// only when the user allows it (`--allow-inactive`); otherwise it is likely a mistake.
    pub may_be_inactive: bool,
}

impl Request {
    /// A request for `spec`; see [`Request::may_be_inactive`].
    pub fn new(spec: impl Into<String>, may_be_inactive: bool) -> Self {
        Request {
            spec: spec.into(),
            may_be_inactive,
        }
    }
}

/// What a resolution decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Every package to layer, sorted by NEVRA.
    pub packages: Vec<PlannedPackage>,
    /// Requests the base satisfies, in request order; they add nothing.
    pub inactive: Vec<InactiveRequest>,
    /// Requests whose package is replaced by an obsoleting one, in request order. The caller should
    /// request the replacement by name instead (`foo` becomes `bar`), as `dnf upgrade` moves to it.
    pub obsoleted: Vec<ObsoletedRequest>,
    /// The packages that meet a request (a local RPM, or one a request selected); the others are
    /// dependencies.
    pub requested: std::collections::BTreeSet<Nevra>,
    /// Base packages the transaction removes: those `remove` names, and those a replacement
    /// takes the place of, sorted.
    pub erased: Vec<Nevra>,
    /// Removals ([`Resolver::override_base`]) that name no base package: inactive, in name order.
    pub inactive_removals: Vec<String>,
    /// Replacements whose exact build the base has already: inactive, layering nothing.
    pub inactive_replacements: Vec<Nevra>,
}

/// A request the base already satisfies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InactiveRequest {
    /// The request's spec.
    pub request: String,
    /// The base package that satisfies it: one it names, or one that obsoletes what it names.
    pub base_package: Nevra,
}

/// A request met by a package that obsoletes the package it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObsoletedRequest {
    /// The request's spec.
    pub request: String,
    /// The package layered for it instead; it is in [`Resolution::packages`].
    pub obsoleted_by: Nevra,
}

/// A repo's metadata as the resolver reads it.
#[derive(Debug, Clone)]
pub struct RepoSource {
    /// The repo's id; packages name it as their repo.
    pub id: String,
    /// `primary.xml[.gz|.xz|.zst|.bz2]`
    pub primary: PathBuf,
    /// `filelists.xml…`, for file dependencies.
    pub filelists: Option<PathBuf>,
    /// dnf's `priority`: lower wins.
    pub priority: i32,
    /// dnf's `cost`: lower wins between repos of the same priority.
    pub cost: i32,
    /// A `.solv` file to read instead of the XML (written when missing); key it by the repomd checksum.
    pub solv_cache: Option<PathBuf>,
    /// Package specs (globs on name, name.arch, name-version[-release], NEVRA) the repo must not offer.
    pub exclude: Vec<String>,
    /// When not empty, the only package specs the repo may offer.
    pub includepkgs: Vec<String>,
}

/// Why a request cannot be resolved; each says which request and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SolveError {
    /// No package matches these requests (every one of the operation that matches nothing).
    #[error("no package in the enabled repos provides {}", quoted_list(requests))]
    NotFound {
        /// The requests, in request order.
        requests: Vec<UnknownRequest>,
    },
    /// A new request the base already satisfies, and it may not be inactive.
    #[error("{request:?} is already provided by the base package {package}")]
    AlreadyInBase {
        /// The request's spec.
        request: String,
        /// NEVRA of the base package that satisfies it.
        package: String,
    },
    /// libsolv found no set of packages that fits the base and the request.
    #[error("the request cannot be satisfied:\n  {}", problems.iter().map(Problem::describe).collect::<Vec<_>>().join("\n  "))]
    Unsatisfiable {
        /// Every problem libsolv reported.
        problems: Vec<Problem>,
    },
}

/// A request that matches no package, and the names it may have meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRequest {
    /// The request's spec.
    pub spec: String,
    /// Names of packages the repos offer that are close to it (case aside, or a letter or two
    /// off), closest first; at most three.
    pub did_you_mean: Vec<String>,
    /// Module streams (`name:stream`) that are not active and have a package of this name: module
    /// filtering hides it (filled in by the caller that knows the modules).
    pub in_module_streams: Vec<String>,
}

/// `"a"`, `"a" or "b"`, `"a", "b" or "c"`.
fn quoted_list(requests: &[UnknownRequest]) -> String {
    let quoted: Vec<String> = requests.iter().map(|r| format!("{:?}", r.spec)).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, first)) => format!("{} or {last}", first.join(", ")),
        None => String::new(),
    }
}

/// Names it may have meant: the names `spec` equals but for case, else those within a small edit
/// distance (one letter for short names, two otherwise), closest first, at most three.
pub(crate) fn did_you_mean(spec: &str, names: &std::collections::BTreeSet<String>) -> Vec<String> {
    let wanted = spec.to_lowercase();
    let limit = if wanted.chars().count() <= 4 { 1 } else { 2 };
    let mut close: Vec<(usize, &String)> = names
        .iter()
        // The name itself is no suggestion: its packages are not installable here (another
        // architecture).
        .filter(|name| name.as_str() != spec)
        .filter_map(|name| {
            let distance = edit_distance(&wanted, &name.to_lowercase());
            (distance <= limit).then_some((distance, name))
        })
        .collect();
    close.sort();
    close
        .into_iter()
        .take(3)
        .map(|(_, name)| name.clone())
        .collect()
}

/// Levenshtein distance between `a` and `b`, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// What to do about a problem of `kind`.
fn problem_hint(kind: &ProblemKind) -> String {
    match kind {
        ProblemKind::NothingProvides(dependency) => format!(
            "nothing in the base or the enabled repos provides {dependency}: the repo that has it may be disabled (`pkglayer refresh-md` lists the enabled ones)"
        ),
        ProblemKind::ConflictsWithBase => {
            "base packages cannot be changed or removed by layering; choose a version that fits the base".to_string()
        }
        ProblemKind::Conflict => {
            "the packages requested conflict with each other: request one of them".to_string()
        }
        ProblemKind::NotInstallable => {
            "the package is for another architecture, or hidden: a repo's exclude= or includepkgs=, or a module stream that is not enabled (`pkglayer module enable`)".to_string()
        }
        ProblemKind::Other => {
            "base packages cannot be changed or removed by layering; pick versions that fit the base".to_string()
        }
    }
}

impl SolveError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            SolveError::NotFound { requests } => {
                let modular: Vec<String> = requests
                    .iter()
                    .filter(|r| !r.in_module_streams.is_empty())
                    .map(|r| {
                        format!(
                            "{:?} is in module streams that are not enabled: {}",
                            r.spec,
                            r.in_module_streams.join(", ")
                        )
                    })
                    .collect();
                if let Some(first) = requests.iter().find_map(|r| r.in_module_streams.first()) {
                    return format!(
                        "{}; enable one (`pkglayer module enable {first}`) or install a profile of it (`pkglayer module install {first}/PROFILE`)",
                        modular.join("; ")
                    );
                }
                let meant: Vec<String> = requests
                    .iter()
                    .filter(|r| !r.did_you_mean.is_empty())
                    .map(|r| {
                        let names = r.did_you_mean.join(" or ");
                        if requests.len() == 1 {
                            names
                        } else {
                            format!("{names} (for {:?})", r.spec)
                        }
                    })
                    .collect();
                if meant.is_empty() {
                    "check the spelling, or whether the repo that has it is enabled (`pkglayer refresh-md` lists the repos)".to_string()
                } else {
                    format!(
                        "did you mean {}? Otherwise check whether the repo that has it is enabled (`pkglayer refresh-md` lists the repos)",
                        meant.join(", ")
                    )
                }
            }
            SolveError::AlreadyInBase { .. } => {
                "it is part of the base image already; pass --allow-inactive to request it anyway"
                    .to_string()
            }
            SolveError::Unsatisfiable { problems } => {
                // One remedy a kind of problem, in the order the problems come.
                let mut hints: Vec<String> = Vec::new();
                for problem in problems {
                    let hint = problem_hint(&problem.kind);
                    if !hints.contains(&hint) {
                        hints.push(hint);
                    }
                }
                hints.join("; ")
            }
        }
    }
}

/// Which builds of `modules` the `jobs` activate on `platform` (libdnf's module solve, see
/// [`crate::modularity`]).
pub(crate) fn solve_modules(
    arch: &str,
    platform: Option<(&str, &str)>,
    modules: &[ModuleSolvable<'_>],
    jobs: &[ModuleJob],
) -> ModuleChoice {
    Pool::solve_modules(arch, platform, modules, jobs)
}

/// How two `[epoch:]version-release` strings compare, by rpm's rules.
pub fn compare_evr(a: &str, b: &str) -> std::cmp::Ordering {
    Pool::new("noarch").evr_cmp(a, b)
}

/// A resolver: one pool with the base rpmdb and the repos' metadata.
pub struct Resolver {
    pool: Pool,
    prepared: bool,
    /// Local RPMs to install, by solvable id.
    local: Vec<libsolv_sys::Id>,
    /// Local RPMs that replace the base packages of their name, by solvable id.
    replacements: Vec<libsolv_sys::Id>,
    /// Names of base packages to remove.
    remove: std::collections::BTreeSet<String>,
    /// Base packages that follow a repo's newest build instead: (repo id, name).
    remote_replacements: Vec<(String, String)>,
}

impl Resolver {
    /// An empty resolver for machine `arch` (`x86_64`, …); libsolv's architecture policy also lets
    /// it take `noarch` and compatible architectures.
    pub fn new(arch: &str) -> Self {
        Resolver {
            pool: Pool::new(arch),
            prepared: false,
            local: Vec::new(),
            replacements: Vec::new(),
            remove: Default::default(),
            remote_replacements: Vec::new(),
        }
    }

    /// Base package overrides: the base packages named in `remove` go, and the local RPMs at
    /// `replacements` (their heads are enough) take the place of the base packages of their names.
    /// Base packages that need a removed one are not removed with it: that is a problem of the
    /// solve, as is a package a replacement no longer satisfies.
    /// `remote` names base packages (with the repo, by id) whose newest build in that repo takes
    /// their place; a full NEVRA instead of a name takes exactly that build.
    pub fn override_base(
        &mut self,
        remove: &std::collections::BTreeSet<String>,
        replacements: &[&Path],
        remote: &[(String, Vec<String>)],
    ) -> Result<()> {
        self.prepared = false;
        self.remove = remove.clone();
        self.remote_replacements = remote
            .iter()
            .flat_map(|(repo, names)| names.iter().map(|name| (repo.clone(), name.clone())))
            .collect();
        if !replacements.is_empty() {
            let ids = self.pool.add_rpm_files(LOCAL_REPO, replacements)?;
            self.replacements.extend(ids);
        }
        Ok(())
    }

    /// The base tree's packages, from the rpm database under `root` (a tree, or a copy of its rpmdb
    /// at the tree's dbpath); `solv_cache` (keyed by the base commit) skips reading it next time.
    pub fn add_base_rpmdb(&mut self, root: &Path, solv_cache: Option<&Path>) -> Result<()> {
        self.prepared = false;
        self.pool.add_installed_rpmdb(root, solv_cache)
    }

    /// Local RPM files (their heads are enough) to install; they form the repo `@commandline`.
    pub fn add_local_rpms(&mut self, paths: &[&Path]) -> Result<()> {
        self.prepared = false;
        let ids = self.pool.add_rpm_files(LOCAL_REPO, paths)?;
        self.local.extend(ids);
        Ok(())
    }

    /// The packages of the repos whose name or summary holds every one of `terms` (case aside), the
    /// newest of each name, sorted: those whose name holds every term first, as dnf's search lists
    /// them.
    pub fn search(&mut self, terms: &[String]) -> Vec<Found> {
        if !self.prepared {
            self.pool.prepare();
            self.prepared = true;
        }
        let terms: Vec<String> = terms.iter().map(|t| t.to_lowercase()).collect();
        let mut newest: std::collections::BTreeMap<String, Found> = Default::default();
        for (info, summary) in self.pool.available_packages() {
            let (name, text) = (info.name.to_lowercase(), summary.to_lowercase());
            if !terms.iter().all(|t| name.contains(t) || text.contains(t)) {
                continue;
            }
            let found = Found {
                name_matched: terms.iter().all(|t| name.contains(t)),
                nevra: to_nevra(&info),
                repo: info.repo,
                summary,
            };
            match newest.entry(found.nevra.name.clone()) {
                std::collections::btree_map::Entry::Vacant(entry) => {
                    entry.insert(found);
                }
                std::collections::btree_map::Entry::Occupied(mut entry) => {
                    if self
                        .pool
                        .evr_cmp(&found.nevra.evr(), &entry.get().nevra.evr())
                        .is_gt()
                    {
                        entry.insert(found);
                    }
                }
            }
        }
        let mut found: Vec<Found> = newest.into_values().collect();
        found.sort_by(|a, b| {
            (!a.name_matched, &a.nevra.name).cmp(&(!b.name_matched, &b.nevra.name))
        });
        found
    }

    /// Hides what module filtering hides ([`crate::modularity`]): packages of the base, local RPMs
    /// and the packages of `hotfix_repos` stay. Call after the last repo is added.
    pub fn filter_modules(&mut self, filter: &ModuleFilter, hotfix_repos: &[&str]) {
        self.prepared = false;
        let pool = &self.pool;
        // Strings the pool does not have name no package in it: they drop out here.
        let triple = |nevra: &Nevra| {
            Some((
                pool.existing_id(&nevra.name)?,
                pool.existing_id(&nevra.evr())?,
                pool.existing_id(&nevra.arch)?,
            ))
        };
        let ids = |names: &std::collections::HashSet<String>| {
            names.iter().filter_map(|n| pool.existing_id(n)).collect()
        };
        let filter = libsolv::ModuleFilterIds {
            include: filter.include.iter().filter_map(triple).collect(),
            exclude: filter.exclude.iter().filter_map(triple).collect(),
            names: ids(&filter.names),
            source_names: ids(&filter.source_names),
        };
        let mut except = vec![LOCAL_REPO];
        except.extend_from_slice(hotfix_repos);
        let hidden = self.pool.module_hidden(&except, &filter);
        self.pool.hide(&hidden);
    }

    /// A repo's metadata.
    pub fn add_repo(&mut self, repo: &RepoSource) -> Result<()> {
        self.prepared = false;
        // dnf: the lower priority (then cost) number wins; libsolv: the higher number wins.
        let priorities = (-repo.priority, -repo.cost);
        self.pool
            .add_rpmmd(
                &repo.id,
                &repo.primary,
                repo.filelists.as_deref(),
                priorities,
                repo.solv_cache.as_deref(),
            )
            .map_err(|err| {
                crate::UserError::new(format!(
                    "the metadata of repo {} is malformed: {err:#}",
                    repo.id
                ))
                .hint("`pkglayer refresh-md --force` fetches it again; if that does not help, the repo itself is broken")
            })?;
        if !repo.exclude.is_empty() || !repo.includepkgs.is_empty() {
            let hidden: Vec<_> = self
                .pool
                .repo_solvables(&repo.id)
                .into_iter()
                .filter(|(_, s)| {
                    let nevra = to_nevra(s);
                    let excluded = repo.exclude.iter().any(|spec| matches_spec(spec, &nevra));
                    let included = repo.includepkgs.is_empty()
                        || repo
                            .includepkgs
                            .iter()
                            .any(|spec| matches_spec(spec, &nevra));
                    excluded || !included
                })
                .map(|(id, _)| id)
                .collect();
            self.pool.hide(&hidden);
        }
        Ok(())
    }

    /// Resolves `requests` on the base: the packages to layer so that each is satisfied, base
    /// packages untouched, and which requests are inactive or obsoleted. Weak dependencies
    /// (Recommends) are followed unless `ignore_weak`, as dnf does by default.
    ///
    /// As `dnf install` does, a request that is a bare package name may be met by a package that
    /// obsoletes the newest of the packages of that name (best repo priority first; dnf5's rule, so
    /// that a split that obsoleted an old version does not win over the current one): the solver
    /// prefers the obsoleting package and falls back to the named one when the obsoleting one cannot
    /// be installed. Obsoletes match names and versions, not provides, and only installable packages
    /// (right architecture, not excluded) count. An obsoleting base package makes the request
    /// inactive, as dnf finds it "already installed".
    ///
    /// Errors ([`SolveError`]): a request that matches nothing, a request the base satisfies that
    /// may not be inactive, and a transaction that cannot be satisfied.
    pub fn resolve_requests(
        &mut self,
        requests: &[Request],
        ignore_weak: bool,
    ) -> Result<Resolution> {
        if !self.prepared {
            self.pool.prepare();
            self.prepared = true;
        }
        let mut inactive = Vec::new();
        // Each active request with what it selected and the packages that obsolete those.
        let mut active: Vec<(&Request, Selection, Vec<libsolv_sys::Id>)> = Vec::new();
        // Every request that matches nothing is named at once.
        let mut unknown = Vec::new();
        for request in requests {
            let selection = self.pool.select(&request.spec)?;
            let obsoleters = match selection.matched {
                Matched::Name => {
                    let available: Vec<_> = selection
                        .solvables
                        .iter()
                        .copied()
                        .filter(|&id| !self.pool.is_installed(id))
                        .collect();
                    self.pool.obsoleters(&self.pool.latest(&available))
                }
                Matched::Provide | Matched::Other => Vec::new(),
            };
            let in_base = selection
                .solvables
                .iter()
                .chain(&obsoleters)
                .find(|&&id| self.pool.is_installed(id));
            if let Some(&base) = in_base {
                let base_package = to_nevra(&self.pool.info(base));
                if !request.may_be_inactive && unknown.is_empty() {
                    return Err(SolveError::AlreadyInBase {
                        request: request.spec.clone(),
                        package: base_package.to_string(),
                    }
                    .into());
                }
                inactive.push(InactiveRequest {
                    request: request.spec.clone(),
                    base_package,
                });
                continue;
            }
            if selection.solvables.is_empty() {
                unknown.push(request.spec.clone());
                continue;
            }
            // As dnf's selector: the named packages and their obsoleters in one job.
            let selection = if obsoleters.is_empty() {
                selection
            } else {
                self.pool.widen(selection, &obsoleters)
            };
            active.push((request, selection, obsoleters));
        }

        if !unknown.is_empty() {
            let names = self.pool.available_names();
            let requests = unknown
                .into_iter()
                .map(|spec| UnknownRequest {
                    did_you_mean: did_you_mean(&spec, &names),
                    in_module_streams: Vec::new(),
                    spec,
                })
                .collect();
            return Err(SolveError::NotFound { requests }.into());
        }
        let selections: Vec<(&Selection, &str)> = active
            .iter()
            .map(|(request, selection, _)| (selection, request.spec.as_str()))
            .collect();
        // Overrides: the base packages named for removal, and those of the replacements' names.
        let base: Vec<(libsolv_sys::Id, SolvableInfo)> = if self.remove.is_empty()
            && self.replacements.is_empty()
            && self.remote_replacements.is_empty()
        {
            Vec::new()
        } else {
            self.pool
                .installed_ids()
                .into_iter()
                .map(|id| (id, self.pool.info(id)))
                .collect()
        };
        let erase: Vec<libsolv_sys::Id> = base
            .iter()
            .filter(|(_, info)| self.remove.contains(&info.name))
            .map(|(id, _)| *id)
            .collect();
        let inactive_removals = self
            .remove
            .iter()
            .filter(|name| !base.iter().any(|(_, info)| info.name == **name))
            .cloned()
            .collect();
        let mut install = self.local.clone();
        let mut unlocked = Vec::new();
        let mut inactive_replacements = Vec::new();
        let mut replacing = self.replacements.clone();
        for (repo, name) in &self.remote_replacements {
            let candidates: Vec<libsolv_sys::Id> = self
                .pool
                .repo_solvables(repo)
                .into_iter()
                // A name takes the repo's newest build; a NEVRA (a lockfile's) that build. Only
                // packages whose name starts the NEVRA are formatted to compare.
                .filter(|(id, info)| {
                    (info.name == *name
                        || (name.starts_with(&info.name) && to_nevra(info).to_string() == *name))
                        && !self.pool.is_hidden(*id)
                })
                .filter(|(_, info)| {
                    info.arch == "noarch"
                        || base
                            .iter()
                            .any(|(_, b)| b.name == info.name && b.arch == info.arch)
                })
                .map(|(id, _)| id)
                .collect();
            let Some(&newest) = self.pool.latest(&candidates).first() else {
                return Err(UserError::new(format!("repo {repo} has no package {name}"))
                    .hint(format!(
                        "check that repo {repo} is enabled and offers {name} for this machine; `pkglayer override reset {name}` drops the replacement"
                    ))
                    .into());
            };
            replacing.push(newest);
        }
        for &id in &replacing {
            let info = self.pool.info(id);
            let same_name: Vec<&(libsolv_sys::Id, SolvableInfo)> =
                base.iter().filter(|(_, b)| b.name == info.name).collect();
            if same_name
                .iter()
                .any(|(_, b)| b.evr == info.evr && b.arch == info.arch)
            {
                inactive_replacements.push(to_nevra(&info));
                continue;
            }
            unlocked.extend(same_name.iter().map(|(base_id, _)| *base_id));
            install.push(id);
        }
        let (installed, erased) =
            match self
                .pool
                .solve_install(&selections, &install, &erase, &unlocked, ignore_weak)
            {
                SolveResult::Problems(problems) => {
                    return Err(SolveError::Unsatisfiable { problems }.into());
                }
                SolveResult::Install { install, erase } => (install, erase),
            };
        let mut erased: Vec<Nevra> = erased
            .iter()
            .map(|&id| to_nevra(&self.pool.info(id)))
            .collect();
        erased.sort();

        let obsoleted = active
            .iter()
            .filter_map(|(request, selection, obsoleters)| {
                let by = self.obsoleted_by(request, selection, obsoleters, &installed)?;
                Some(ObsoletedRequest {
                    request: request.spec.clone(),
                    obsoleted_by: to_nevra(&self.pool.info(by)),
                })
            })
            .collect();
        let requested = installed
            .iter()
            .copied()
            .filter(|id| {
                self.local.contains(id)
                    || replacing.contains(id)
                    || active
                        .iter()
                        .any(|(_, selection, _)| selection.solvables.contains(id))
            })
            .map(|id| to_nevra(&self.pool.info(id)))
            .collect();
        let mut packages: Vec<PlannedPackage> = installed
            .iter()
            .map(|&id| planned(self.pool.info(id)))
            .collect::<Result<_>>()?;
        packages.sort_by(|a, b| a.nevra.cmp(&b.nevra));
        Ok(Resolution {
            packages,
            inactive,
            obsoleted,
            requested,
            erased,
            inactive_removals,
            inactive_replacements,
        })
    }

    /// The package that meets `request` in the transaction `installed` while obsoleting what the
    /// request names: one of its `obsoleters` chosen over the named packages, or for a bare provide
    /// that no package has as its name, the provider chosen when it obsoletes that name (the usual
    /// rename: `Provides: foo` and `Obsoletes: foo` once foo is gone from the repos).
    fn obsoleted_by(
        &self,
        request: &Request,
        selection: &Selection,
        obsoleters: &[libsolv_sys::Id],
        installed: &[libsolv_sys::Id],
    ) -> Option<libsolv_sys::Id> {
        let chosen = |id: &libsolv_sys::Id| installed.contains(id);
        let named = selection
            .solvables
            .iter()
            .filter(|id| !obsoleters.contains(id))
            .find(|id| chosen(id));
        match (named, selection.matched) {
            (None, _) => obsoleters.iter().copied().find(chosen),
            (Some(&provider), Matched::Provide) => self
                .pool
                .obsoletes_name(provider, &request.spec)
                .then_some(provider),
            (Some(_), Matched::Name | Matched::Other) => None,
        }
    }
}

/// Whether a dnf package spec (a glob) names this package, in any of the forms dnf accepts.
pub fn matches_spec(spec: &str, nevra: &Nevra) -> bool {
    let forms = [
        nevra.name.clone(),
        format!("{}.{}", nevra.name, nevra.arch),
        format!("{}-{}", nevra.name, nevra.version),
        format!("{}-{}-{}", nevra.name, nevra.version, nevra.release),
        format!("{}-{}", nevra.name, nevra.evr()),
        nevra.to_string(),
    ];
    forms
        .iter()
        .any(|form| glob_match(spec.as_bytes(), form.as_bytes()))
}

/// Shell-style glob: `*`, `?` and `[...]` (with `!` or `^` to negate).
pub(crate) fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob_match(&pattern[1..], text) || (!text.is_empty() && glob_match(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob_match(&pattern[1..], &text[1..]),
        (Some(b'['), Some(&c)) => match pattern.iter().position(|&b| b == b']') {
            Some(close) if close > 1 => {
                let set = &pattern[1..close];
                let (negate, set) = match set.first() {
                    Some(b'!' | b'^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let mut found = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == b'-' {
                        found |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        found |= set[i] == c;
                        i += 1;
                    }
                }
                found != negate && glob_match(&pattern[close + 1..], &text[1..])
            }
            _ => c == b'[' && glob_match(&pattern[1..], &text[1..]),
        },
        (Some(&p), Some(&c)) => p == c && glob_match(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// The package `s` as the transaction installs it. A checksum pkglayer cannot verify (sha1, md5 in
/// old metadata) refuses it now: its download could never be checked.
fn planned(s: SolvableInfo) -> Result<PlannedPackage> {
    let nevra = to_nevra(&s);
    let checksum = s
        .checksum
        .map(|(algorithm, hex)| {
            Checksum::new(&algorithm, &hex).map_err(|err| {
                UserError::new(format!(
                    "repo {} gives {nevra} a checksum pkglayer cannot verify: {err:#}",
                    s.repo
                ))
                .hint("pkglayer checks packages by sha256 or sha512; the repo's owner can regenerate its metadata with createrepo_c, which uses sha256")
            })
        })
        .transpose()?;
    Ok(PlannedPackage {
        nevra,
        repo: s.repo,
        download_size: s.download_size,
        install_size: s.install_size,
        location: s.location,
        checksum,
    })
}

fn to_nevra(s: &SolvableInfo) -> Nevra {
    Nevra::from_parts(&s.name, &s.evr, &s.arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested_closest_first() {
        let names: std::collections::BTreeSet<String> =
            ["strace", "straces", "ltrace", "vim", "vim-minimal", "tmux"]
                .iter()
                .map(|n| n.to_string())
                .collect();
        assert_eq!(edit_distance("strac", "strace"), 1);
        assert_eq!(edit_distance("strca", "strace"), 2);
        assert_eq!(edit_distance("", "vim"), 3);
        assert_eq!(
            did_you_mean("STRACE", &names),
            ["strace", "ltrace", "straces"]
        );
        assert_eq!(
            did_you_mean("strce", &names),
            ["strace", "ltrace", "straces"]
        );
        // Short names get one letter of slack, not two.
        assert_eq!(did_you_mean("vin", &names), ["vim"]);
        assert_eq!(did_you_mean("tmx", &names), ["tmux"]);
        assert!(did_you_mean("emacs", &names).is_empty());
    }

    #[test]
    fn specs_match_like_dnf() {
        let nevra = Nevra::parse("kernel-core-6.8.1-300.fc40.x86_64").unwrap();
        let yes = [
            "kernel-core",
            "kernel*",
            "kernel-core.x86_64",
            "kernel-core-6.8.1",
            "kernel-core-6.8.1-300.fc40",
            "kernel-core-6.8.1-300.fc40.x86_64",
            "kernel-?ore",
            "kernel-[a-d]ore",
            "*.x86_64",
        ];
        let no = [
            "kernel",
            "kernel-core.noarch",
            "kernel-[!c]ore",
            "*-7*",
            "glibc*",
        ];
        for spec in yes {
            assert!(matches_spec(spec, &nevra), "{spec} should match");
        }
        for spec in no {
            assert!(!matches_spec(spec, &nevra), "{spec} should not match");
        }
    }
}
