//! Planning a layering operation (pipeline steps 1–4): which base, which repos, which packages, and
//! whether the result differs from the current deployment.
//!
//! Planning writes nothing but caches: repo metadata, the base rpmdb copy and `.solv` files under the
//! stateroot's `/var/cache/pkglayer`. `resolve` turns the request into packages; `refusals`
//! turns a plan down before anything is downloaded.

mod refusals;
pub(crate) mod resolve;
mod setid;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use fn_error_context::context;
use sha2::Digest;

use crate::commit_metadata::DeploymentLayer;
use crate::lockfile::Lockfile;
use crate::origin::Origin;
use crate::progress::Progress;
use crate::repo::{Freshness, RepoMetadata, RepoOptions, SkippedRepo};
use crate::request::LocalFile;
use crate::rpm::Nevra;
use crate::solver::{LOCAL_REPO, ObsoletedRequest, PlannedPackage};
use crate::workspace::Workspace;
pub use setid::SetidFile;

/// The outcome of planning an install.
#[derive(Debug)]
pub struct InstallPlan {
    /// The vendor commit the layer goes on.
    pub base_commit: String,
    /// The whole request after this operation (what the origin will say).
    pub requested: BTreeSet<String>,
    /// Requests the base satisfies: kept, layering nothing.
    pub inactive_requests: Vec<String>,
    /// Requests whose package another one obsoletes, and what replaces them in the request.
    pub replaced_requests: Vec<ObsoletedRequest>,
    /// Every package of the resulting layer, sorted.
    pub packages: Vec<PlannedPackage>,
    /// Those of `packages` that meet a request (the rest are dependencies).
    pub requested_packages: BTreeSet<Nevra>,
    /// Those of `packages` the package cache lacks: applying the plan downloads them.
    pub to_download: BTreeSet<Nevra>,
    /// Packages of the layer that the current deployment does not have.
    pub added: Vec<PlannedPackage>,
    /// Layered packages of the current deployment that the new layer drops.
    pub removed: Vec<Nevra>,
    /// Base packages the new deployment goes without (`override remove`), sorted.
    pub removed_base: Vec<Nevra>,
    /// Base packages a local replacement takes the place of (`override replace`): (base, new).
    pub replaced_base: Vec<(Nevra, Nevra)>,
    /// Overrides that do not apply to this base: removals of packages it lacks, replacements
    /// whose exact build it has (names and NEVRAs).
    pub inactive_overrides: Vec<String>,
    /// Base packages the current deployment removes or replaces and the new one has again
    /// (`override reset`), by the NEVRA they had in the current deployment's base.
    pub restored_base: Vec<Nevra>,
    /// Names of base packages the current deployment already removes or replaces: the
    /// transaction shows only what changes.
    pub overridden_before: BTreeSet<String>,
    /// The repos resolution read, with the state of their metadata.
    pub repos: Vec<RepoMetadata>,
    /// Repos skipped under `skip_if_unavailable=1`.
    pub skipped_repos: Vec<SkippedRepo>,
    /// Repos whose file lists resolution had to fetch (a path that primary metadata does not list).
    pub filelists_fetched: Vec<String>,
    /// The module streams whose packages resolution could see (`name:stream`).
    pub active_modules: BTreeSet<String>,
    /// Module dependency problems: some wanted streams could not be active.
    pub module_problems: Vec<String>,
    /// Local RPM files this operation names; the transaction imports them into the package cache.
    pub local_files: Vec<LocalFile>,
    /// What the layered tree is a function of (base, request, skipped scripts, packages), as hex
    /// sha512; an equal digest means an unchanged layer.
    pub state_digest: String,
    /// The layer would equal the current one: dry and real runs alike then change nothing.
    pub unchanged: bool,
    /// Setuid and setgid files of the added packages whose headers are at hand (local files, the
    /// package cache).
    pub setid_files: Vec<SetidFile>,
    /// A lockfile's sha256 of the repo packages whose metadata gives another checksum (sha1,
    /// sha512): checked once they are in the package cache, before anything is composed.
    pub locked_sha256: BTreeMap<Nevra, String>,
}

/// Plans the layer for `origin`'s request on `base_commit` (the current base, or for an upgrade the
/// newest one), compared with `current` (the layer of the deployment the operation builds on).
/// `local_files` are local RPMs named by this operation, not yet in the package cache; requests in
/// `may_be_inactive` may be satisfied by the base (they are kept and layer nothing), others may not.
/// A package to download whose file list has a path no OSTree tree can hold is refused here,
/// before any download (`refuse_unplaceable_files`). With a `lockfile`, resolution takes exactly
/// its packages, or fails naming those the repos do not give.
#[context("Planning the transaction")]
#[allow(clippy::too_many_arguments)]
pub fn plan(
    workspace: &Workspace,
    origin: &Origin,
    current: &Current,
    base_commit: &str,
    options: &RepoOptions,
    local_files: &[LocalFile],
    may_be_inactive: &BTreeSet<String>,
    lockfile: Option<&Lockfile>,
    progress: &dyn Progress,
) -> Result<InstallPlan> {
    let repo = workspace.repo();
    let requested = origin.requested.clone();
    let mut plan = InstallPlan {
        base_commit: base_commit.to_string(),
        requested,
        inactive_requests: Vec::new(),
        replaced_requests: Vec::new(),
        packages: Vec::new(),
        requested_packages: BTreeSet::new(),
        to_download: BTreeSet::new(),
        added: Vec::new(),
        removed: Vec::new(),
        removed_base: Vec::new(),
        replaced_base: Vec::new(),
        inactive_overrides: Vec::new(),
        restored_base: Vec::new(),
        overridden_before: BTreeSet::new(),
        repos: Vec::new(),
        skipped_repos: Vec::new(),
        filelists_fetched: Vec::new(),
        active_modules: BTreeSet::new(),
        module_problems: Vec::new(),
        local_files: local_files.to_vec(),
        state_digest: String::new(),
        unchanged: false,
        setid_files: Vec::new(),
        locked_sha256: BTreeMap::new(),
    };
    if !plan.requested.is_empty()
        || !origin.requested_local.is_empty()
        || !origin.modules.is_empty()
        || origin.has_overrides()
    {
        resolve::resolve(
            workspace,
            &repo,
            origin,
            options,
            may_be_inactive,
            lockfile,
            &mut plan,
            progress,
        )?;
        let gone: Vec<&Nevra> = plan
            .removed_base
            .iter()
            .chain(plan.replaced_base.iter().map(|(old, _)| old))
            .collect();
        crate::overrides::refuse_kernel_changes(&repo, base_commit, &gone)?;
        let mut to_download = Vec::new();
        for package in &plan.packages {
            if needs_download(&repo, package)? {
                to_download.push(package);
            }
        }
        plan.to_download = to_download.iter().map(|p| p.nevra.clone()).collect();
        if options.freshness == Freshness::CacheOnly {
            refusals::refuse_uncached(&to_download)?;
        }
        refusals::refuse_unplaceable_files(&plan, &to_download, progress)?;
    }
    let current_packages: BTreeSet<&Nevra> = current.layer.packages.iter().collect();
    plan.added = plan
        .packages
        .iter()
        .filter(|p| !current_packages.contains(&p.nevra))
        .cloned()
        .collect();
    let new_set: BTreeSet<&Nevra> = plan.packages.iter().map(|p| &p.nevra).collect();
    plan.removed = current
        .layer
        .packages
        .iter()
        .filter(|nevra| !new_set.contains(nevra))
        .cloned()
        .collect();
    let before = current
        .layer
        .base_removals
        .iter()
        .chain(current.layer.base_replacements.iter().map(|(old, _)| old));
    let now: BTreeSet<&str> = plan
        .removed_base
        .iter()
        .chain(plan.replaced_base.iter().map(|(old, _)| old))
        .map(|n| n.name.as_str())
        .collect();
    plan.restored_base = before
        .clone()
        .filter(|old| !now.contains(old.name.as_str()))
        .cloned()
        .collect();
    plan.overridden_before = before.map(|old| old.name.clone()).collect();
    plan.setid_files = setid::setid_files(&repo, &plan)?;
    plan.state_digest = state_digest(base_commit, &plan.requested, origin, &plan.packages);
    if origin.has_overrides() {
        plan.state_digest = with_overrides(&plan.state_digest, &plan);
    }
    plan.unchanged = plan.state_digest == current.state_digest;
    Ok(plan)
}

/// What a plan changes in the layer, as a transaction shows it (dnf's sections).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes<'a> {
    /// New packages that meet a request.
    pub installing: Vec<&'a PlannedPackage>,
    /// New packages that only other packages need.
    pub dependencies: Vec<&'a PlannedPackage>,
    /// A layered package replaced by a newer build of its name and arch: (old, new).
    pub upgrading: Vec<(&'a Nevra, &'a PlannedPackage)>,
    /// A layered package replaced by an older build of its name and arch: (old, new).
    pub downgrading: Vec<(&'a Nevra, &'a PlannedPackage)>,
    /// Layered packages that go.
    pub removing: Vec<&'a Nevra>,
    /// Base packages the new deployment goes without (`override remove`).
    pub removing_base: Vec<&'a Nevra>,
    /// Base packages a layered one replaces (`override replace`): (base, new).
    pub replacing_base: Vec<(&'a Nevra, &'a PlannedPackage)>,
    /// Base packages that are back (`override reset`).
    pub restoring_base: Vec<&'a Nevra>,
}

impl InstallPlan {
    /// The plan's additions and removals as sections: a removal and an addition of the same name
    /// and arch are one upgrade (or downgrade), never an install plus a removal.
    pub fn changes(&self) -> Changes<'_> {
        let mut changes = Changes::default();
        let mut removed: Vec<&Nevra> = self.removed.iter().collect();
        changes.removing_base = self
            .removed_base
            .iter()
            .filter(|n| !self.overridden_before.contains(&n.name))
            .collect();
        changes.restoring_base = self.restored_base.iter().collect();
        for package in &self.added {
            if let Some((old, _)) = self
                .replaced_base
                .iter()
                .find(|(_, new)| *new == package.nevra)
            {
                changes.replacing_base.push((old, package));
                continue;
            }
            let new = &package.nevra;
            let old = removed
                .iter()
                .position(|old| old.name == new.name && old.arch == new.arch);
            match old.map(|index| removed.remove(index)) {
                Some(old) => {
                    if crate::solver::compare_evr(&new.evr(), &old.evr()).is_lt() {
                        changes.downgrading.push((old, package));
                    } else {
                        changes.upgrading.push((old, package));
                    }
                }
                None if self.requested_packages.contains(new) => changes.installing.push(package),
                None => changes.dependencies.push(package),
            }
        }
        changes.removing = removed;
        changes
    }
}

/// The deployment an operation builds on, as planning compares with it.
#[derive(Debug)]
pub struct Current {
    pub(crate) layer: DeploymentLayer,
    /// The state digest of its layer (for a plain deployment: of nothing layered on itself).
    pub state_digest: String,
}

impl Current {
    /// Reads the layer and state digest of `commit`.
    pub fn of_commit(repo: &ostree::Repo, commit: &str) -> Result<Self> {
        Ok(Self::of_layer(DeploymentLayer::read(repo, commit)?))
    }

    /// The layer and state digest of a deployment of `commit` with `origin`
    /// ([`DeploymentLayer::of_deployment`]).
    pub fn of_deployment(repo: &ostree::Repo, commit: &str, origin: &Origin) -> Result<Self> {
        Ok(Self::of_layer(DeploymentLayer::of_deployment(
            repo, commit, origin,
        )?))
    }

    fn of_layer(layer: DeploymentLayer) -> Self {
        let state_digest = layer.state_digest.clone().unwrap_or_else(|| {
            state_digest(&layer.base_commit, &BTreeSet::new(), &Origin::new(""), &[])
        });
        Current {
            layer,
            state_digest,
        }
    }
}

/// sha512 over what the layered tree is a function of: the base, the request (local packages by
/// digest), the packages whose scripts are skipped, the resolved packages.
fn state_digest(
    base_commit: &str,
    requested: &BTreeSet<String>,
    origin: &Origin,
    packages: &[PlannedPackage],
) -> String {
    let mut hasher = sha2::Sha512::new();
    hasher.update(base_commit.as_bytes());
    for request in requested {
        hasher.update(b"\nrequest ");
        hasher.update(request.as_bytes());
    }
    for sha256 in origin.requested_local.values() {
        hasher.update(b"\nlocal ");
        hasher.update(sha256.as_bytes());
    }
    // The origin's module requests are part of the layer's state even when they add no package.
    for (key, specs) in [
        (&b"\nmodule-enable "[..], &origin.modules.enable),
        (&b"\nmodule-install "[..], &origin.modules.install),
    ] {
        for spec in specs {
            hasher.update(key);
            hasher.update(spec.as_bytes());
        }
    }
    // Only names of packages in the layer change the tree: a name left over from a package since
    // uninstalled must not make every later plan look like a change.
    for name in origin
        .skip_scripts
        .iter()
        .filter(|name| packages.iter().any(|p| p.nevra.name == **name))
    {
        hasher.update(b"\nskip-scripts ");
        hasher.update(name.as_bytes());
    }
    let mut nevras: Vec<String> = packages.iter().map(|p| p.nevra.to_string()).collect();
    nevras.sort();
    for nevra in nevras {
        hasher.update(b"\npackage ");
        hasher.update(nevra.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The state digest `digest` of a layer that also removes or replaces base packages: the sha512
/// of it and of the overrides as they apply (layers without overrides keep the digest they had).
fn with_overrides(digest: &str, plan: &InstallPlan) -> String {
    let mut hasher = sha2::Sha512::new();
    hasher.update(digest.as_bytes());
    for nevra in &plan.removed_base {
        hasher.update(b"\nremove-base ");
        hasher.update(nevra.to_string().as_bytes());
    }
    for (old, new) in &plan.replaced_base {
        hasher.update(b"\nreplace-base ");
        hasher.update(format!("{old} {new}").as_bytes());
    }
    for inactive in &plan.inactive_overrides {
        hasher.update(b"\ninactive-override ");
        hasher.update(inactive.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Whether applying the plan downloads `package`: a repo package the package cache lacks, or holds
/// in another build than the repo's.
fn needs_download(repo: &ostree::Repo, package: &PlannedPackage) -> Result<bool> {
    Ok(package.repo != LOCAL_REPO && crate::layer::cached_copy(repo, package)?.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "base1";
    const SHA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn package(nevra: &str) -> PlannedPackage {
        PlannedPackage {
            nevra: Nevra::parse(nevra).unwrap(),
            repo: "fedora".into(),
            download_size: 1,
            install_size: 2,
            location: None,
            checksum: None,
        }
    }

    fn specs(specs: &[&str]) -> BTreeSet<String> {
        specs.iter().map(|s| s.to_string()).collect()
    }

    /// strace (and libfoo) requested from a repo, one local package, strace's scripts skipped.
    fn inputs() -> (BTreeSet<String>, Origin, Vec<PlannedPackage>) {
        let mut origin = Origin::new("vendor:os/1");
        origin.requested = specs(&["strace"]);
        origin
            .requested_local
            .insert(Nevra::parse("local-1-1.x86_64").unwrap(), SHA.into());
        origin.skip_scripts.insert("strace".into());
        let packages = vec![
            package("libfoo-2.3-1.x86_64"),
            package("strace-6.1-1.x86_64"),
        ];
        (origin.requested.clone(), origin, packages)
    }

    #[test]
    fn the_state_digest_of_nothing_layered_is_the_sha512_of_the_base() {
        // A plain deployment's digest is computed, not stored: it must stay this.
        assert_eq!(
            state_digest(BASE, &BTreeSet::new(), &Origin::new(""), &[]),
            "e8fd25d9c6f51857602612a0c3212fce86f0b30af9e91a5137da1654437ab2d3\
             95ae060a98687f66f180fe377fa70363da0115023c9a1ea9be0700fcb6705513"
        );
    }

    #[test]
    fn the_state_digest_format_is_stable() {
        // Layered commits store their digest; a new format would make every plan look like a change.
        let (requested, origin, packages) = inputs();
        assert_eq!(
            state_digest(BASE, &requested, &origin, &packages),
            "3b81ce667d78e98f8f91968f1e0fbc61432dc2391a257ae2747079199c5ef85d\
             639b29ca0e74b49b5b291ecb0fb5cfd25d90ce6a6e7999b9add3bad9fb821849"
        );
    }

    #[test]
    fn the_state_digest_follows_every_input() {
        let (requested, origin, packages) = inputs();
        let digest = state_digest(BASE, &requested, &origin, &packages);
        assert_eq!(digest, state_digest(BASE, &requested, &origin, &packages));

        assert_ne!(
            digest,
            state_digest("base2", &requested, &origin, &packages),
            "base"
        );
        let more = specs(&["strace", "htop"]);
        assert_ne!(
            digest,
            state_digest(BASE, &more, &origin, &packages),
            "request"
        );
        let mut other_local = origin.clone();
        other_local
            .requested_local
            .insert(Nevra::parse("local-1-1.x86_64").unwrap(), "b".repeat(64));
        assert_ne!(
            digest,
            state_digest(BASE, &requested, &other_local, &packages),
            "local sha256"
        );
        let mut skip_layered = origin.clone();
        skip_layered.skip_scripts.insert("libfoo".into());
        assert_ne!(
            digest,
            state_digest(BASE, &requested, &skip_layered, &packages),
            "skip-scripts of a layered package"
        );
        let newer = vec![
            package("libfoo-2.4-1.x86_64"),
            package("strace-6.1-1.x86_64"),
        ];
        assert_ne!(
            digest,
            state_digest(BASE, &requested, &origin, &newer),
            "package NEVRA"
        );
    }

    #[test]
    fn skip_scripts_of_a_package_not_in_the_layer_do_not_count() {
        let (requested, origin, packages) = inputs();
        let mut leftover = origin.clone();
        leftover.skip_scripts.insert("uninstalled-long-ago".into());
        assert_eq!(
            state_digest(BASE, &requested, &leftover, &packages),
            state_digest(BASE, &requested, &origin, &packages)
        );
    }

    #[test]
    fn package_order_does_not_change_the_state_digest() {
        let (requested, origin, mut packages) = inputs();
        let digest = state_digest(BASE, &requested, &origin, &packages);
        packages.reverse();
        assert_eq!(digest, state_digest(BASE, &requested, &origin, &packages));
    }
}
