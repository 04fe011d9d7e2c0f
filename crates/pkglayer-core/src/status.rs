//! The state of a stateroot's deployments, as `status` reports it.
//!
//! The JSON form uses rpm-ostree's key names where the meaning is the same, so scripts written for
//! `rpm-ostree status --json` keep working.

use anyhow::Result;
use fn_error_context::context;
use serde::Serialize;

use crate::commit_metadata::{CommitInfo, DeploymentLayer};
use crate::deploy::deployment_id;
use crate::sysroot::{Role, Sysroot};

/// The deployments of a stateroot, as `status` reports them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Status {
    /// Default first, in ostree's order.
    pub deployments: Vec<DeploymentStatus>,
    /// Always null: pkglayer runs no daemon, so there is never a transaction in flight to report.
    pub transaction: Option<String>,
    /// The automatic update policy and its last run (pkglayer's own key).
    pub automatic_updates: crate::automatic::Summary,
}

/// One deployment: its commit, what it layers, and its role.
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
    /// Module streams the origin enables (`[modules] enable=`).
    pub requested_modules_enabled: Vec<String>,
    /// Module profiles the origin installs (`[modules] install=`).
    pub requested_modules: Vec<String>,
    /// Layered packages (NEVRAs) in this deployment.
    pub packages: Vec<String>,
    /// The commit's `version` (for a layered commit, its base's).
    pub version: Option<String>,
    /// Commit time, seconds since the epoch.
    pub timestamp: u64,
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
}

/// Reads the status of the sysroot's stateroot. Writes nothing.
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
            let layer = DeploymentLayer::of(&checksum, &info);
            let role = sysroot.role(deployment);
            Ok(DeploymentStatus {
                id: format!("{}-{}", deployment.osname(), deployment_id(deployment)),
                osname: deployment.osname().to_string(),
                serial: deployment.deployserial(),
                base_checksum: (layer.base_commit != checksum).then_some(layer.base_commit),
                origin: origin.refspec.clone(),
                requested_packages: origin.requested.iter().cloned().collect(),
                requested_local_packages: origin
                    .requested_local
                    .keys()
                    .map(ToString::to_string)
                    .collect(),
                inactive_requests: layer.inactive_requests,
                requested_modules_enabled: origin.modules.enable.iter().cloned().collect(),
                requested_modules: origin.modules.install.iter().cloned().collect(),
                packages: layer.packages.iter().map(|n| n.to_string()).collect(),
                version: info.version(),
                timestamp: info.timestamp(),
                booted: role == Role::Booted,
                pending: role == Role::Pending,
                rollback: role == Role::Rollback,
                staged: deployment.is_staged(),
                pinned: deployment.is_pinned(),
                checksum,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Status {
        deployments,
        transaction: None,
        automatic_updates: crate::automatic::summary(sysroot),
    })
}
