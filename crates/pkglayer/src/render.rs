//! Human-readable output, shaped like rpm-ostree's so its users feel at home.

use std::io::{self, Write};

use pkglayer_core::deploy::CleanupOutcome;
use pkglayer_core::layer::Outcome;
use pkglayer_core::operation::{self, DeployedChanges};
use pkglayer_core::plan::InstallPlan;
use pkglayer_core::repo::{SkippedRepo, SyncReport};
use pkglayer_core::rpm::Nevra;
use pkglayer_core::rpmdb::PackageDiff;
use pkglayer_core::solver::{Found, PlannedPackage};
use pkglayer_core::status::{DeploymentStatus, Status};
use pkglayer_core::sysroot::LockState;

/// Width of the right-aligned labels in `status`.
const LABEL_WIDTH: usize = 20;

/// `status`: whether an operation runs, then each deployment (only the booted one with
/// `booted_only`).
pub fn status(
    out: &mut impl Write,
    status: &Status,
    verbose: bool,
    booted_only: bool,
) -> io::Result<()> {
    match &status.state {
        LockState::Idle => writeln!(out, "State: idle")?,
        LockState::Busy {
            operation: Some(operation),
            pid,
            since,
        } => writeln!(
            out,
            "State: busy ({operation}{}{})",
            pid.map_or(String::new(), |pid| format!(", process {pid}")),
            since.map_or(String::new(), |since| format!(
                ", since {}",
                format_timestamp(since)
            ))
        )?,
        LockState::Busy { .. } => writeln!(
            out,
            "State: busy (another ostree tool holds the sysroot lock)"
        )?,
    }
    if let Some(line) = status.automatic_updates.line() {
        writeln!(out, "{line}")?;
    }
    writeln!(out, "Deployments:")?;
    if status.deployments.is_empty() && booted_only {
        writeln!(
            out,
            "  (none is booted: this sysroot is not the running system)"
        )?;
    }
    for deployment in &status.deployments {
        deployment_block(out, deployment, verbose)?;
    }
    if let Some(update) = &status.cached_update {
        let field = |out: &mut dyn Write, label: &str, value: &str| {
            writeln!(out, "{label:>LABEL_WIDTH$}: {value}")
        };
        writeln!(
            out,
            "AvailableUpdate (downloaded, not deployed; `pkglayer upgrade` deploys it):"
        )?;
        let when = format_timestamp(update.timestamp);
        let version = match &update.version {
            Some(version) => format!("{version} ({when})"),
            None => when,
        };
        field(out, "Version", &version)?;
        field(out, "Commit", &update.checksum)?;
        let diff = &update.rpm_diff;
        field(
            out,
            "Diff",
            &format!(
                "{} changed, {} removed, {} added",
                diff.changed.len(),
                diff.removed.len(),
                diff.added.len()
            ),
        )?;
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
    // As rpm-ostree shows it: the base's version and time, layered or not.
    let when = format_timestamp(d.base_timestamp.unwrap_or(d.timestamp));
    let version = match d.base_version.as_ref().or(d.version.as_ref()) {
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
    if let Some(end_of_life) = &d.end_of_life {
        field(out, "EndOfLife", end_of_life)?;
    }
    if !d.image_packages.is_empty() {
        field(out, "ImagePackages", &d.image_packages.join(" "))?;
    }
    let active: Vec<&str> = d
        .requested_packages
        .iter()
        .filter(|p| !d.inactive_requests.contains(p))
        .map(String::as_str)
        .collect();
    if !active.is_empty() {
        field(out, "LayeredPackages", &active.join(" "))?;
    }
    if !d.inactive_requests.is_empty() {
        field(out, "InactiveRequests", &d.inactive_requests.join(" "))?;
    }
    if !d.requested_local_packages.is_empty() {
        field(out, "LocalPackages", &d.requested_local_packages.join(" "))?;
    }
    if !d.base_removals.is_empty() {
        let names: Vec<String> = d
            .base_removals
            .iter()
            .filter_map(|n| pkglayer_core::rpm::Nevra::parse(n))
            .map(|n| n.name)
            .collect();
        field(out, "RemovedBasePackages", &names.join(" "))?;
    }
    for [old, new] in d
        .base_local_replacements
        .iter()
        .chain(&d.base_remote_replacements)
    {
        let (Some(old), Some(new)) = (
            pkglayer_core::rpm::Nevra::parse(old),
            pkglayer_core::rpm::Nevra::parse(new),
        ) else {
            continue;
        };
        field(
            out,
            "ReplacedBasePackages",
            &format!("{} {} -> {}", old.name, old.evr(), new.evr()),
        )?;
    }
    if !d.inactive_overrides.is_empty() {
        field(out, "InactiveOverrides", &d.inactive_overrides.join(" "))?;
    }
    if !d.requested_modules.is_empty() {
        field(out, "LayeredModules", &d.requested_modules.join(" "))?;
    }
    if !d.requested_modules_enabled.is_empty() {
        field(
            out,
            "EnabledModules",
            &d.requested_modules_enabled.join(" "),
        )?;
    }
    writeln!(out)
}

/// `db diff`, one package a line: `+` added, `-` removed, `~` another version.
pub fn db_diff(out: &mut impl Write, from: &str, to: &str, diff: &PackageDiff) -> io::Result<()> {
    writeln!(out, "ostree diff commit from: {from}")?;
    writeln!(out, "ostree diff commit to:   {to}")?;
    if diff.added.is_empty() && diff.removed.is_empty() && diff.changed.is_empty() {
        return writeln!(out, "No package changes.");
    }
    for change in &diff.changed {
        writeln!(out, "~ {} {} -> {}", change.name, change.from, change.to)?;
    }
    for nevra in &diff.removed {
        writeln!(out, "- {nevra}")?;
    }
    for nevra in &diff.added {
        writeln!(out, "+ {nevra}")?;
    }
    Ok(())
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

/// The transaction of an install, as a table with totals; nothing when no package changes.
pub fn install_plan(out: &mut impl Write, plan: &InstallPlan) -> io::Result<()> {
    if !plan.filelists_fetched.is_empty() {
        writeln!(
            out,
            "Fetched the file lists of {} (a path that primary metadata does not list was needed).",
            plan.filelists_fetched.join(", ")
        )?;
    }
    for replaced in &plan.replaced_requests {
        let by = &replaced.obsoleted_by;
        writeln!(
            out,
            "Request {} replaced by {}: {by} obsoletes it.",
            replaced.request, by.name
        )?;
    }
    if !plan.inactive_requests.is_empty() {
        writeln!(
            out,
            "Inactive requests (the base provides them): {}",
            plan.inactive_requests.join(", ")
        )?;
    }
    if !plan.inactive_overrides.is_empty() {
        writeln!(
            out,
            "Inactive overrides (they do not apply to this base): {}",
            plan.inactive_overrides.join(", ")
        )?;
    }
    let changes = plan.changes();
    if plan.added.is_empty()
        && plan.removed.is_empty()
        && changes.removing_base.is_empty()
        && changes.restoring_base.is_empty()
    {
        return Ok(());
    }
    transaction_table(out, plan)?;
    transaction_summary(out, plan)
}

/// The changes as dnf shows them: a header row, then a section a kind of change.
fn transaction_table(out: &mut impl Write, plan: &InstallPlan) -> io::Result<()> {
    let changes = plan.changes();
    let row = |p: &PlannedPackage, version: String| -> [String; 5] {
        [
            p.nevra.name.clone(),
            version,
            p.nevra.arch.clone(),
            p.repo.clone(),
            human_size(p.download_size),
        ]
    };
    let changed = |(old, new): &(&Nevra, &PlannedPackage)| {
        row(new, format!("{} -> {}", old.evr(), new.nevra.evr()))
    };
    let base_row = |n: &&Nevra| {
        [
            n.name.clone(),
            n.evr(),
            n.arch.clone(),
            "base".to_string(),
            String::new(),
        ]
    };
    let sections: [(&str, Vec<[String; 5]>); 8] = [
        (
            "Installing",
            changes
                .installing
                .iter()
                .map(|p| row(p, p.nevra.evr()))
                .collect(),
        ),
        (
            "Installing dependencies",
            changes
                .dependencies
                .iter()
                .map(|p| row(p, p.nevra.evr()))
                .collect(),
        ),
        ("Upgrading", changes.upgrading.iter().map(changed).collect()),
        (
            "Downgrading",
            changes.downgrading.iter().map(changed).collect(),
        ),
        (
            "Removing",
            changes
                .removing
                .iter()
                .map(|n| {
                    [
                        n.name.clone(),
                        n.evr(),
                        n.arch.clone(),
                        "layered".to_string(),
                        String::new(),
                    ]
                })
                .collect(),
        ),
        (
            "Removing base packages",
            changes.removing_base.iter().map(base_row).collect(),
        ),
        (
            "Replacing base packages",
            changes.replacing_base.iter().map(changed).collect(),
        ),
        (
            "Restoring base packages",
            changes.restoring_base.iter().map(base_row).collect(),
        ),
    ];
    let header = ["Package", "Version", "Arch", "Repo", "Size"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for rows in sections.iter().map(|(_, rows)| rows) {
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let line = |out: &mut dyn Write, cells: &[String; 5]| {
        let [w0, w1, w2, w3, w4] = widths;
        let text = format!(
            " {:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {:>w4$}",
            cells[0], cells[1], cells[2], cells[3], cells[4]
        );
        writeln!(out, "{}", text.trim_end())
    };
    line(out, &header)?;
    for (title, rows) in &sections {
        if rows.is_empty() {
            continue;
        }
        writeln!(out, "{title}:")?;
        for row in rows {
            line(out, row)?;
        }
    }
    Ok(())
}

/// `Summary: install 2 packages, upgrade 1 package` and the sizes: what is downloaded (packages
/// the package cache lacks) and what the new packages occupy installed.
fn transaction_summary(out: &mut impl Write, plan: &InstallPlan) -> io::Result<()> {
    let changes = plan.changes();
    let counts = [
        (
            "install",
            changes.installing.len() + changes.dependencies.len(),
        ),
        ("upgrade", changes.upgrading.len()),
        ("downgrade", changes.downgrading.len()),
        ("remove", changes.removing.len()),
        ("remove base", changes.removing_base.len()),
        ("replace base", changes.replacing_base.len()),
        ("restore base", changes.restoring_base.len()),
    ];
    let summary: Vec<String> = counts
        .iter()
        .filter(|(_, count)| *count > 0)
        .map(|(verb, count)| format!("{verb} {}", packages(*count)))
        .collect();
    writeln!(out, "Summary: {}", summary.join(", "))?;
    if plan.added.is_empty() {
        return Ok(());
    }
    let downloads: Vec<&PlannedPackage> = plan
        .added
        .iter()
        .filter(|p| plan.to_download.contains(&p.nevra))
        .collect();
    let download = if downloads.is_empty() {
        "nothing".to_string()
    } else {
        format!(
            "{} ({})",
            human_size(downloads.iter().map(|p| p.download_size).sum()),
            packages(downloads.len())
        )
    };
    let installed: u64 = plan.added.iter().map(|p| p.install_size).sum();
    writeln!(
        out,
        "Download: {download}; installed size: {}",
        human_size(installed)
    )?;
    if !plan.setid_files.is_empty() {
        writeln!(out, "Setuid and setgid files:")?;
        for file in &plan.setid_files {
            writeln!(
                out,
                "  {}  {}  {:04o}  {}",
                file.path,
                file.describe(),
                file.mode,
                file.nevra
            )?;
        }
    }
    Ok(())
}

/// `1 package`, `2 packages`.
fn packages(count: usize) -> String {
    if count == 1 {
        "1 package".to_string()
    } else {
        format!("{count} packages")
    }
}

pub fn install_plan_json(plan: &InstallPlan) -> serde_json::Value {
    let package = |p: &pkglayer_core::solver::PlannedPackage| {
        serde_json::json!({
            "nevra": p.nevra.to_string(),
            "name": p.nevra.name,
            "evr": p.nevra.evr(),
            "arch": p.nevra.arch,
            "repo": p.repo,
            "download-size": p.download_size,
            "install-size": p.install_size,
        })
    };
    serde_json::json!({
        "base-checksum": plan.base_commit,
        "requested-packages": plan.requested,
        "inactive-requests": plan.inactive_requests,
        "replaced-requests": plan.replaced_requests.iter().map(|replaced| {
            serde_json::json!({
                "request": replaced.request,
                "obsoleted-by": replaced.obsoleted_by.to_string(),
            })
        }).collect::<Vec<_>>(),
        "packages": plan.packages.iter().map(package).collect::<Vec<_>>(),
        "added": plan.added.iter().map(|p| p.nevra.to_string()).collect::<Vec<_>>(),
        "removed": plan.removed.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "base-removals": plan.removed_base.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "base-replacements": plan.replaced_base.iter()
            .map(|(old, new)| [old.to_string(), new.to_string()])
            .collect::<Vec<_>>(),
        "restored-base": plan.restored_base.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "inactive-overrides": plan.inactive_overrides,
        "download-size": plan.added.iter().map(|p| p.download_size).sum::<u64>(),
        "install-size": plan.added.iter().map(|p| p.install_size).sum::<u64>(),
        "setid-files": plan.setid_files.iter().map(|f| serde_json::json!({
            "path": f.path,
            "mode": f.mode,
            "user": f.user,
            "group": f.group,
            "nevra": f.nevra.to_string(),
        })).collect::<Vec<_>>(),
        "repos": plan.repos.iter().map(|r| serde_json::json!({
            "id": r.id,
            "checksum": r.checksum,
            "fetched": r.fetched,
        })).collect::<Vec<_>>(),
        "filelists-fetched": plan.filelists_fetched,
        "active-modules": plan.active_modules,
    })
}

/// A transaction as one JSON document: the plan, and what came of it (`null` for a dry run).
pub fn transaction_json(report: &operation::Report) -> serde_json::Value {
    let mut json = install_plan_json(&report.plan);
    json["unchanged"] = report.unchanged().into();
    json["changes"] = match &report.changes {
        None => serde_json::Value::Null,
        Some(changes) => serde_json::json!({
            "against": changes.against,
            "booted": changes.booted,
            "added": changes.diff.added,
            "removed": changes.diff.removed,
            "changed": changes.diff.changed,
        }),
    };
    json["outcome"] = match &report.outcome {
        None => serde_json::Value::Null,
        Some(Outcome::NoChange) => serde_json::json!({ "kind": "no-change" }),
        Some(Outcome::Downloaded { imported }) => {
            serde_json::json!({ "kind": "downloaded", "downloaded": imported })
        }
        Some(Outcome::Deployed {
            deployment,
            commit,
            downloaded,
            reused,
        }) => serde_json::json!({
            "kind": "deployed",
            "deployment": deployment,
            "checksum": commit,
            "downloaded": downloaded,
            "reused": reused,
        }),
    };
    json
}

/// An upgrade as one JSON document: the base found, and the transaction on it (if resolved).
pub fn upgrade_json(report: &operation::UpgradeReport) -> serde_json::Value {
    let base = &report.base;
    serde_json::json!({
        "origin": base.refspec,
        "base-checksum": base.current,
        "base-version": base.current_version,
        "newest-base-checksum": base.newest,
        "newest-base-version": base.newest_version,
        "update-available": report.update_available(),
        "transaction": report.transaction.as_ref().map(transaction_json),
    })
}

/// One line: whether the base is up to date, or which version it moves to.
pub fn base_change(out: &mut impl Write, base: &operation::BaseChange) -> io::Result<()> {
    let version = |commit: &str, version: &Option<String>| {
        version.clone().unwrap_or_else(|| commit[..12].to_string())
    };
    let current = version(&base.current, &base.current_version);
    if base.is_update() {
        writeln!(
            out,
            "Base {}: {current} -> {} ({})",
            base.refspec,
            version(&base.newest, &base.newest_version),
            base.newest
        )
    } else {
        writeln!(out, "Base {}: up to date ({current})", base.refspec)
    }
}

/// What applying the transaction did.
pub fn outcome(out: &mut impl Write, outcome: &Outcome) -> io::Result<()> {
    match outcome {
        Outcome::NoChange => writeln!(out, "No change."),
        Outcome::Downloaded { imported } => {
            writeln!(
                out,
                "Downloaded {imported} packages into the cache; nothing deployed."
            )
        }
        Outcome::Deployed {
            deployment,
            downloaded,
            reused,
            ..
        } => {
            // The layer is downloaded + reused packages; say which is which without summing them
            // with the transaction's own counts.
            match (downloaded, reused) {
                (0, 0) => {}
                (0, reused) => writeln!(
                    out,
                    "Every package of the layer ({}) was in the package cache.",
                    packages(*reused)
                )?,
                (downloaded, 0) => writeln!(out, "Downloaded {}.", packages(*downloaded))?,
                (downloaded, 1) => writeln!(
                    out,
                    "Downloaded {}; 1 more was in the package cache.",
                    packages(*downloaded)
                )?,
                (downloaded, reused) => writeln!(
                    out,
                    "Downloaded {}; {reused} more were in the package cache.",
                    packages(*downloaded)
                )?,
            }
            writeln!(out, "Deployed {deployment}: it boots next.")
        }
    }
}

/// What the new deployment changes against the booted one (or the one it was built on), and
/// what to do next.
pub fn deployed_changes(out: &mut impl Write, changes: &DeployedChanges) -> io::Result<()> {
    let diff = &changes.diff;
    let against = if changes.booted {
        "the booted deployment"
    } else {
        "the deployment it was built on"
    };
    if diff.added.is_empty() && diff.removed.is_empty() && diff.changed.is_empty() {
        writeln!(out, "No package changes against {against}.")?;
    } else {
        writeln!(out, "Changes against {against} ({}):", changes.against)?;
        if !diff.changed.is_empty() {
            writeln!(out, "  Changed:")?;
            for change in &diff.changed {
                writeln!(out, "    {} {} -> {}", change.name, change.from, change.to)?;
            }
        }
        for (title, list) in [("Removed", &diff.removed), ("Added", &diff.added)] {
            if !list.is_empty() {
                writeln!(out, "  {title}:")?;
                for nevra in list {
                    writeln!(out, "    {nevra}")?;
                }
            }
        }
    }
    if changes.booted {
        writeln!(out, "Run \"systemctl reboot\" to start using it.")
    } else {
        writeln!(
            out,
            "It is the default at the sysroot's next boot; `pkglayer rollback` goes back."
        )
    }
}

/// One line a repo: whether its metadata was fetched or is cached, and its revision.
pub fn refreshed(out: &mut impl Write, report: &SyncReport) -> io::Result<()> {
    for repo in &report.repos {
        let state = if repo.fetched {
            "fetched"
        } else {
            "cached, still fresh"
        };
        let revision = repo.repomd.revision.as_deref().unwrap_or("-");
        writeln!(out, "{}: {state} (revision {revision})", repo.id)?;
    }
    Ok(())
}

/// Repos skipped under skip_if_unavailable=1 are worth a warning even with -q off the log.
pub fn skipped_repos(skipped: &[SkippedRepo]) {
    for repo in skipped {
        eprintln!(
            "{} skipped repo {} (skip_if_unavailable=1): {}",
            crate::style::warning(),
            repo.id,
            repo.reason
        );
    }
}

/// Module streams wanted but left inactive, as dnf warns of them.
pub fn module_problems(problems: &[String]) {
    if !problems.is_empty() {
        eprintln!(
            "{} module dependency problems (the streams involved stay inactive):\n  {}",
            crate::style::warning(),
            problems.join("\n  ")
        );
    }
}

/// `1.5 KiB`, `12.0 MiB`
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `search`: one line a package, `name.arch : summary`; packages whose name matched first.
pub fn search(out: &mut impl Write, found: &[Found]) -> io::Result<()> {
    if found.is_empty() {
        return writeln!(out, "No matches found.");
    }
    for package in found {
        writeln!(
            out,
            "{}.{} : {}",
            package.nevra.name, package.nevra.arch, package.summary
        )?;
    }
    Ok(())
}

/// `search --json`: every package with its NEVRA, repo and summary.
pub fn search_json(found: &[Found]) -> serde_json::Value {
    serde_json::Value::Array(
        found
            .iter()
            .map(|package| {
                serde_json::json!({
                    "name": package.nevra.name,
                    "nevra": package.nevra.to_string(),
                    "repo": package.repo,
                    "summary": package.summary,
                    "name-matched": package.name_matched,
                })
            })
            .collect(),
    )
}

/// After `rollback`: which deployment boots next.
pub fn rolled_back(out: &mut impl Write, deployment_id: &str) -> io::Result<()> {
    writeln!(
        out,
        "Deployment {deployment_id} is the default again; it boots next."
    )
}

/// After `cleanup --cache`: what went.
pub fn cache_cleaned(out: &mut impl Write, released: &operation::Released) -> io::Result<()> {
    writeln!(
        out,
        "Removed {} cached packages, {} script results, {} cache entries and {} scratch directories.",
        released.packages, released.script_results, released.cache_entries, released.scratch
    )
}

/// What `compose` wrote: the transaction, then the commit at the ref (or that nothing changed).
pub fn composed(
    out: &mut impl Write,
    report: &pkglayer_core::fleet::ComposeReport,
    refname: &str,
    json: bool,
) -> io::Result<()> {
    if json {
        let value = serde_json::json!({
            "ref": refname,
            "base-commit": report.base_commit,
            "commit": report.commit,
            "changed": report.built.is_some(),
            "static-delta": report.static_delta,
            "plan": install_plan_json(&report.plan),
        });
        serde_json::to_writer_pretty(&mut *out, &value)?;
        return writeln!(out);
    }
    install_plan(out, &report.plan)?;
    match &report.built {
        None => writeln!(
            out,
            "No change: {refname} already holds this layer ({}).",
            report.commit
        ),
        Some(built) => {
            writeln!(
                out,
                "Committed {} to {refname} ({} packages downloaded, {} from the cache).",
                built.commit, built.downloaded, built.reused
            )?;
            if report.static_delta {
                writeln!(
                    out,
                    "Static delta: {} -> {}.",
                    report.base_commit, built.commit
                )?;
            }
            writeln!(out, "Summary updated.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_like_dnf() {
        let cases = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1536, "1.5 KiB"),
            (5 << 20, "5.0 MiB"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(human_size(bytes), expected);
        }
    }
}
