//! Changing the deployment list: deploying a commit, rolling back, dropping deployments.
//!
//! All of it is libostree's work; this module decides *which* list to write. The booted deployment is
//! never removed, and a pinned one only leaves when the user unpins it.

use anyhow::Result;
use fn_error_context::context;
use ostree::gio;

use crate::commit_metadata::DeploymentLayer;
use crate::error::UserError;
use crate::origin::Origin;
use crate::retention;
use crate::sysroot::{Sysroot, SysrootLock};

/// Deploys `commit` with `origin` as the new default of the stateroot.
///
/// `/etc` is merged from the current deployment and its kernel arguments are carried over (the options
/// variant of `deploy_tree` with no override does that; an empty override would wipe them). The current
/// deployment stays as rollback, the booted one is kept, older ones are pruned. The new deployment's
/// base is pinned before the list is written, and what the deployments no longer use is released
/// after. The caller holds the sysroot lock for its whole operation.
#[context("Deploying commit {commit}")]
pub fn deploy_commit(
    sysroot: &Sysroot,
    lock: &SysrootLock,
    commit: &str,
    origin: &Origin,
) -> Result<ostree::Deployment> {
    let ostree = sysroot.ostree();
    let base = DeploymentLayer::of_deployment(&sysroot.repo(), commit, origin)?.base_commit;
    if base != commit {
        retention::pin_base(&sysroot.repo(), &base)?;
    }
    let merge = sysroot.current();
    let opts = ostree::SysrootDeployTreeOpts::default();
    let deployment = ostree.deploy_tree_with_options(
        Some(sysroot.stateroot()),
        commit,
        Some(&origin.to_keyfile()),
        Some(&merge),
        Some(&opts),
        gio::Cancellable::NONE,
    )?;
    crate::failpoint::hit("mid-deploy");
    ostree.simple_write_deployment(
        Some(sysroot.stateroot()),
        &deployment,
        Some(&merge),
        ostree::SysrootSimpleWriteDeploymentFlags::NO_CLEAN,
        gio::Cancellable::NONE,
    )?;
    sysroot.reload()?;
    retention::release_after_change(sysroot, lock);
    Ok(deployment)
}

/// Makes the previous deployment the default again; returns the new default.
///
/// With a pending deployment, the booted one becomes the default again (the pending one is kept, as
/// rollback). Otherwise the rollback deployment moves to the top.
#[context("Rolling back")]
pub fn rollback(sysroot: &Sysroot) -> Result<ostree::Deployment> {
    let lock = sysroot.lock("rollback")?;
    sysroot.reload()?;
    let target = match (sysroot.booted(), sysroot.pending()) {
        (Some(booted), Some(_)) => booted,
        _ => sysroot.rollback().ok_or_else(|| {
            UserError::new(format!(
                "stateroot {} has no deployment to roll back to",
                sysroot.stateroot()
            ))
            .hint("`pkglayer status` lists the deployments; a rollback target appears after an install or upgrade")
        })?,
    };
    let mut deployments = sysroot.ostree().deployments();
    deployments.retain(|d| !d.equal(&target));
    deployments.insert(0, target.clone());
    sysroot.write_deployments(&deployments)?;
    retention::release_after_change(sysroot, &lock);
    Ok(target)
}

/// Which deployments `cleanup` drops.
#[derive(Debug, Clone, Copy, Default)]
pub struct CleanupRequest {
    /// Drop the pending deployment (deployed since boot, the default at next boot).
    pub pending: bool,
    /// Drop the rollback deployment.
    pub rollback: bool,
}

/// What `cleanup` did.
#[derive(Debug, Default)]
pub struct CleanupOutcome {
    /// `checksum.serial` of each deployment removed.
    pub removed: Vec<String>,
    /// Deployments that would have been removed but are pinned.
    pub kept_pinned: Vec<String>,
}

/// Drops the pending and/or rollback deployment, then prunes the repo of what they alone used.
#[context("Cleaning up deployments")]
pub fn cleanup(sysroot: &Sysroot, request: CleanupRequest) -> Result<CleanupOutcome> {
    let lock = sysroot.lock("cleanup")?;
    sysroot.reload()?;
    let mut doomed = Vec::new();
    if request.pending {
        doomed.extend(sysroot.pending());
    }
    if request.rollback {
        doomed.extend(sysroot.rollback());
    }

    let mut outcome = CleanupOutcome::default();
    let (pinned, doomed): (Vec<_>, Vec<_>) = doomed.into_iter().partition(|d| d.is_pinned());
    outcome.kept_pinned = pinned.iter().map(deployment_id).collect();
    if doomed.is_empty() {
        return Ok(outcome);
    }

    let mut deployments = sysroot.ostree().deployments();
    deployments.retain(|d| !doomed.iter().any(|gone| gone.equal(d)));
    sysroot.write_deployments(&deployments)?;
    retention::release_after_change(sysroot, &lock);
    outcome.removed = doomed.iter().map(deployment_id).collect();
    Ok(outcome)
}

/// `checksum.serial`, the name ostree itself gives a deployment.
pub fn deployment_id(deployment: &ostree::Deployment) -> String {
    format!("{}.{}", deployment.csum(), deployment.deployserial())
}
