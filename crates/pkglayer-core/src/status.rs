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

#[derive(Debug, Serialize)]
pub struct Status {
    pub deployments: Vec<DeploymentStatus>,
    /// Always null: pkglayer runs no daemon, so there is never a transaction in flight to report.
    pub transaction: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeploymentStatus {
    /// `osname-checksum.serial`, as rpm-ostree names deployments.
    pub id: String,
    pub osname: String,
    pub serial: i32,
    /// The deployed commit.
    pub checksum: String,
    /// The vendor commit under the layer; absent when nothing is layered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_checksum: Option<String>,
    /// The refspec the base follows.
    pub origin: String,
    pub requested_packages: Vec<String>,
    pub requested_local_packages: Vec<String>,
    /// Requests the base satisfies (rpm-ostree's InactiveRequests): kept, layering nothing.
    pub inactive_requests: Vec<String>,
    /// Layered packages (NEVRAs) in this deployment.
    pub packages: Vec<String>,
    pub version: Option<String>,
    /// Commit time, seconds since the epoch.
    pub timestamp: u64,
    pub booted: bool,
    pub pending: bool,
    pub rollback: bool,
    pub staged: bool,
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
    })
}
