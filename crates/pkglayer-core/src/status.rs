//! The state of a stateroot's deployments, as `status` reports it.
//!
//! The JSON form uses rpm-ostree's key names where the meaning is the same, so scripts written for
//! `rpm-ostree status --json` keep working.

use anyhow::Result;
use fn_error_context::context;
use serde::Serialize;

use crate::commit_metadata::{CommitInfo, DeploymentLayer};
use crate::deploy::deployment_id;
use crate::origin::Origin;
use crate::sysroot::{LockState, Role, Sysroot};

/// The deployments of a stateroot, as `status` reports them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Status {
    /// Default first, in ostree's order.
    pub deployments: Vec<DeploymentStatus>,
    /// Always null: pkglayer runs no daemon, so there is never a transaction in flight to report
    /// (see `state` for an operation holding the sysroot lock).
    pub transaction: Option<String>,
    /// A newer base for the latest deployment's refspec, downloaded whole (`upgrade
    /// --download-only`) but not deployed, with its package changes; null when there is none.
    pub cached_update: Option<CachedUpdate>,
    /// Whether an operation holds the sysroot lock (pkglayer's key).
    pub state: LockState,
    /// The automatic update policy and its last run (pkglayer's own key).
    pub automatic_updates: crate::automatic::Summary,
}

/// A downloaded, not yet deployed base (rpm-ostree's `cached-update`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CachedUpdate {
    /// The refspec it is the newest commit of.
    pub origin: String,
    /// The commit.
    pub checksum: String,
    /// Its `version`.
    pub version: Option<String>,
    /// Its commit time, seconds since the epoch.
    pub timestamp: u64,
    /// The base packages it changes against the latest deployment's base (rpm-ostree groups the
    /// same facts as `upgraded`, `downgraded`, `removed`, `added`).
    pub rpm_diff: crate::rpmdb::PackageDiff,
}

/// The base the repo holds for `origin`'s refspec when it is newer than `current_base` and pulled
/// whole (`upgrade --check` pulls only commit objects: those do not count).
fn cached_update(
    repo: &ostree::Repo,
    origin: &Origin,
    current_base: &str,
) -> Result<Option<CachedUpdate>> {
    let newest = crate::base::newest_base_here(repo, origin)?;
    let Some(newest) = newest.filter(|c| c != current_base) else {
        return Ok(None);
    };
    let (_, state) = repo.load_commit(&newest)?;
    if state.contains(ostree::RepoCommitState::PARTIAL) {
        return Ok(None);
    }
    let (info, current) = (
        CommitInfo::load(repo, &newest)?,
        CommitInfo::load(repo, current_base)?,
    );
    // Commit times have a one-second grain: only an older commit is no update (as `upgrade`
    // refuses to go back).
    if info.timestamp() < current.timestamp() {
        return Ok(None);
    }
    let rpm_diff = crate::rpmdb::diff(
        &crate::rpmdb::packages_in_commit(repo, current_base)?,
        &crate::rpmdb::packages_in_commit(repo, &newest)?,
    );
    Ok(Some(CachedUpdate {
        origin: origin.refspec.clone(),
        version: info.version(),
        timestamp: info.timestamp(),
        checksum: newest,
        rpm_diff,
    }))
}

/// One deployment: its commit, what it layers, and its role. Keys are rpm-ostree's, with its
/// meanings; `inactive-requests`, `layered-nevras`, `pending`, `rollback` and `end-of-life` are
/// pkglayer's.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeploymentStatus {
    /// `osname-checksum.serial`, as rpm-ostree names deployments.
    pub id: String,
    /// The stateroot it belongs to.
    pub osname: String,
    /// ostree's deployment serial: tells deployments of the same commit apart.
    pub serial: i32,
    /// The deployed commit.
    pub checksum: String,
    /// The vendor commit under the layer; absent when nothing is layered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_checksum: Option<String>,
    /// The refspec the base follows.
    pub origin: String,
    /// Package specs the origin requests from repos.
    pub requested_packages: Vec<String>,
    /// Local RPMs the origin requests, by NEVRA.
    pub requested_local_packages: Vec<String>,
    /// Requests the base satisfies (rpm-ostree's InactiveRequests): kept, layering nothing.
    pub inactive_requests: Vec<String>,
    /// The requests that are layered (requested, not inactive), as rpm-ostree lists them.
    pub packages: Vec<String>,
    /// Every layered package, dependencies included, as NEVRAs.
    pub layered_nevras: Vec<String>,
    /// Base packages the origin removes, by name (`[overrides] remove=`).
    pub requested_base_removals: Vec<String>,
    /// Base packages the deployment goes without, as NEVRAs.
    pub base_removals: Vec<String>,
    /// Local RPMs the origin replaces base packages with, by NEVRA (`[overrides] replace-local=`).
    pub requested_base_local_replacements: Vec<String>,
    /// Base packages replaced in the deployment: `[base NEVRA, replacement NEVRA]` pairs.
    pub base_local_replacements: Vec<[String; 2]>,
    /// Base packages the origin has follow a repo's builds: `repo=ID,name,…` as in the origin.
    pub requested_base_remote_replacements: Vec<String>,
    /// Base packages replaced by a repo's build: `[base NEVRA, replacement NEVRA]` pairs.
    pub base_remote_replacements: Vec<[String; 2]>,
    /// Overrides that do not apply to the deployment's base (pkglayer's key).
    pub inactive_overrides: Vec<String>,
    /// The packages of a composed image the host's base is (`pkglayer compose`): layered on the
    /// vendor's base by the build machine, not by this host (pkglayer's key).
    pub image_packages: Vec<String>,
    /// Module streams the origin enables (`[modules] enable=`).
    pub requested_modules_enabled: Vec<String>,
    /// Module profiles the origin installs (`[modules] install=`).
    pub requested_modules: Vec<String>,
    /// The commit's `version` (for a layered commit, its base's).
    pub version: Option<String>,
    /// Commit time of the deployed commit, seconds since the epoch.
    pub timestamp: u64,
    /// The base's `version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_version: Option<String>,
    /// The base's commit time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_timestamp: Option<u64>,
    /// The base commit's metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_commit_meta: Option<serde_json::Value>,
    /// The layered commit's metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layered_commit_meta: Option<serde_json::Value>,
    /// The vendor's end-of-life notice for the base (`ostree.endoflife`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_of_life: Option<String>,
    /// The running system.
    pub booted: bool,
    /// Deployed since boot: the default at next boot.
    pub pending: bool,
    /// What `rollback` goes back to.
    pub rollback: bool,
    /// Staged by ostree: finalized only at shutdown.
    pub staged: bool,
    /// Pinned in ostree: cleanup and new deployments leave it.
    pub pinned: bool,
    /// ostree's unlock state: always `none` (pkglayer never unlocks `/usr`).
    pub unlocked: &'static str,
    /// Whether the origin's remote checks GPG signatures of commits.
    pub gpg_enabled: bool,
}

/// Reads the status of the sysroot's stateroot. Writes nothing (it takes the sysroot lock for a
/// moment, when free, to tell whether an operation runs).
#[context("Reading deployment status")]
pub fn status(sysroot: &Sysroot) -> Result<Status> {
    let repo = sysroot.repo();
    let deployments = sysroot
        .deployments()
        .iter()
        .map(|deployment| {
            let origin = sysroot.origin(deployment)?;
            let checksum = deployment.csum().to_string();
            let info = CommitInfo::load(&repo, &checksum)?;
            let layer = if origin.is_layered() {
                DeploymentLayer::of(&checksum, &info)
            } else {
                DeploymentLayer::of_deployment(&repo, &checksum, &origin)?
            };
            let image_packages = DeploymentLayer::image_packages(&repo, &layer.base_commit)?;
            let role = sysroot.role(deployment);
            let layered = layer.base_commit != checksum;
            let base_info = if layered {
                CommitInfo::load(&repo, &layer.base_commit)?
            } else {
                CommitInfo::load(&repo, &checksum)?
            };
            let gpg_enabled = origin
                .remote()
                .and_then(|remote| repo.remote_get_gpg_verify(remote).ok())
                .unwrap_or(false);
            Ok(DeploymentStatus {
                id: format!("{}-{}", deployment.osname(), deployment_id(deployment)),
                osname: deployment.osname().to_string(),
                serial: deployment.deployserial(),
                base_checksum: layered.then(|| layer.base_commit.clone()),
                origin: origin.refspec.clone(),
                requested_packages: origin.requested.iter().cloned().collect(),
                requested_local_packages: origin
                    .requested_local
                    .keys()
                    .map(ToString::to_string)
                    .collect(),
                packages: origin
                    .requested
                    .iter()
                    .filter(|r| !layer.inactive_requests.contains(r))
                    .cloned()
                    .collect(),
                inactive_requests: layer.inactive_requests,
                layered_nevras: layer.packages.iter().map(|n| n.to_string()).collect(),
                requested_base_removals: origin.override_remove.iter().cloned().collect(),
                base_removals: layer.base_removals.iter().map(|n| n.to_string()).collect(),
                requested_base_local_replacements: origin
                    .override_replace_local
                    .keys()
                    .map(ToString::to_string)
                    .collect(),
                base_local_replacements: layer
                    .base_replacements
                    .iter()
                    .filter(|(_, new)| origin.override_replace_local.contains_key(new))
                    .map(|(old, new)| [old.to_string(), new.to_string()])
                    .collect(),
                requested_base_remote_replacements: origin
                    .override_replace_remote
                    .iter()
                    .map(|(repo, names)| format!("repo={repo},{}", names.join(",")))
                    .collect(),
                base_remote_replacements: layer
                    .base_replacements
                    .iter()
                    .filter(|(_, new)| !origin.override_replace_local.contains_key(new))
                    .map(|(old, new)| [old.to_string(), new.to_string()])
                    .collect(),
                inactive_overrides: layer.inactive_overrides.clone(),
                image_packages: image_packages.iter().map(|n| n.to_string()).collect(),
                requested_modules_enabled: origin.modules.enable.iter().cloned().collect(),
                requested_modules: origin.modules.install.iter().cloned().collect(),
                version: info.version(),
                timestamp: info.timestamp(),
                base_version: layered.then(|| base_info.version()).flatten(),
                base_timestamp: layered.then(|| base_info.timestamp()),
                base_commit_meta: Some(base_info.to_json()),
                layered_commit_meta: layered.then(|| info.to_json()),
                end_of_life: base_info.endoflife(),
                booted: role == Role::Booted,
                pending: role == Role::Pending,
                rollback: role == Role::Rollback,
                staged: deployment.is_staged(),
                pinned: deployment.is_pinned(),
                unlocked: "none",
                gpg_enabled,
                checksum,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Status {
        deployments,
        transaction: None,
        cached_update: {
            let latest = sysroot.latest();
            let origin = sysroot.origin(&latest)?;
            let layer = DeploymentLayer::of_deployment(&repo, &latest.csum(), &origin)?;
            cached_update(&repo, &origin, &layer.base_commit)?
        },
        state: sysroot.lock_state()?,
        automatic_updates: crate::automatic::summary(sysroot),
    })
}
