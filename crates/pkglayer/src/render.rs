//! Human-readable output, shaped like rpm-ostree's so its users feel at home.

use std::io::{self, Write};

use pkglayer_core::deploy::CleanupOutcome;
use pkglayer_core::status::{DeploymentStatus, Status};

/// Width of the right-aligned labels in `status`.
const LABEL_WIDTH: usize = 20;

pub fn status(out: &mut impl Write, status: &Status, verbose: bool) -> io::Result<()> {
    writeln!(out, "Deployments:")?;
    for deployment in &status.deployments {
        deployment_block(out, deployment, verbose)?;
    }
    Ok(())
}

fn deployment_block(out: &mut impl Write, d: &DeploymentStatus, verbose: bool) -> io::Result<()> {
    let marker = if d.booted { "●" } else { " " };
    let role = if d.pending {
        " (pending)"
    } else if d.rollback {
        " (rollback)"
    } else {
        ""
    };
    writeln!(out, "{marker} {}{role}", d.origin)?;

    let field = |out: &mut dyn Write, label: &str, value: &str| {
        writeln!(out, "{label:>LABEL_WIDTH$}: {value}")
    };
    let when = format_timestamp(d.timestamp);
    let version = match &d.version {
        Some(version) => format!("{version} ({when})"),
        None => when,
    };
    field(out, "Version", &version)?;
    match &d.base_checksum {
        Some(base) => {
            field(out, "BaseCommit", base)?;
            if verbose {
                field(out, "Commit", &d.checksum)?;
            }
        }
        None => field(out, "Commit", &d.checksum)?,
    }
    if verbose {
        field(out, "Deployment", &d.id)?;
        field(out, "Staged", yes_no(d.staged))?;
    }
    if d.pinned {
        field(out, "Pinned", "yes")?;
    }
    if !d.requested_packages.is_empty() {
        field(out, "LayeredPackages", &d.requested_packages.join(" "))?;
    }
    if !d.requested_local_packages.is_empty() {
        field(out, "LocalPackages", &d.requested_local_packages.join(" "))?;
    }
    writeln!(out)
}

pub fn cleanup(out: &mut impl Write, outcome: &CleanupOutcome) -> io::Result<()> {
    for id in &outcome.removed {
        writeln!(out, "Removed deployment {id}")?;
    }
    for id in &outcome.kept_pinned {
        writeln!(out, "Kept deployment {id}: it is pinned")?;
    }
    if outcome.removed.is_empty() && outcome.kept_pinned.is_empty() {
        writeln!(out, "Nothing to remove.")?;
    }
    Ok(())
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// `2026-11-25T19:54:09Z`
fn format_timestamp(seconds: u64) -> String {
    chrono::DateTime::from_timestamp(seconds as i64, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| seconds.to_string())
}
