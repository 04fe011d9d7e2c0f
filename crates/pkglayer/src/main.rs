//! pkglayer's command line: parse arguments, call the library, render the result.
//!
//! Exit status: 0 success; 1 a failure the user can act on (`error: …` and maybe `hint: …`);
//! 2 misuse (clap) or an internal error (a failure with no known remedy, or a panic); 77 for "no
//! change" where asked for. The kind of an error decides ([`ErrorKind`]).

mod cli;
mod progress;
mod render;
mod style;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use pkglayer_core::error::ErrorKind;
use pkglayer_core::lockfile::Lockfile;
use pkglayer_core::repo::{Freshness, RepoOptions};
use pkglayer_core::{Sysroot, deploy, operation, query, status};

use cli::{
    Cli, Command, DbCommand, ModuleCommand, OverrideCommand, RepoArgs, TransactionArgs, UpgradeArgs,
};

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("{} internal error: {info}", style::error());
        eprintln!(
            "{} this is a bug in pkglayer; please report it with the command you ran",
            style::hint()
        );
        std::process::exit(2);
    }));
    let cli = Cli::parse();
    init_logging(&cli);
    match run(&cli) {
        Ok(code) => code,
        // A reader that closed the pipe (`status --json | head -1`) wants no more: end quietly.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let kind = ErrorKind::of(&err);
            eprintln!("{} {err:#}", style::error());
            match pkglayer_core::error::hint_of(&err) {
                Some(hint) => eprintln!("{} {hint}", style::hint()),
                None if kind == ErrorKind::Internal => eprintln!(
                    "{} pkglayer did not expect this; if the message does not tell what is wrong \
                     with the machine, please report it with the command you ran",
                    style::hint()
                ),
                None => {}
            }
            ExitCode::from(kind.exit_status())
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PKGLAYER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(style::Labelled)
        .init();
}

/// Exit status for "nothing changed" under `--unchanged-exit-77`, and for `upgrade --check` when
/// no update is available (rpm-ostree's convention).
const EXIT_UNCHANGED: u8 = 77;
/// `status --pending-exit-77`: a deployment waits for a reboot (rpm-ostree's code for it).
const EXIT_PENDING: u8 = 77;

/// The core's repo options for a command that only reads repos, from the command line.
fn repo_options(args: &RepoArgs, freshness: Freshness) -> RepoOptions {
    RepoOptions {
        reposdir: args.reposdir.clone(),
        disable: args.disablerepo.clone(),
        enable: args.enablerepo.clone(),
        releasever: args.releasever.clone(),
        freshness,
    }
}

/// The core's options for a transaction, from the command line.
fn transaction_options(args: &TransactionArgs, download_only: bool) -> operation::Options {
    operation::Options {
        reposdir: args.repos.reposdir.clone(),
        disable_repos: args.repos.disablerepo.clone(),
        enable_repos: args.repos.enablerepo.clone(),
        releasever: args.repos.releasever.clone(),
        dry_run: args.dry_run,
        cache_only: args.cache_only,
        download_only,
        lockfile: None,
    }
}

/// `compose`: a layered commit into an archive repo, on a build machine (no sysroot).
fn compose(args: &cli::ComposeArgs, quiet: bool) -> Result<ExitCode> {
    let origin = match &args.request {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|err| {
                pkglayer_core::UserError::new(format!("cannot read {}: {err}", path.display()))
                    .hint("give an origin file with [packages] requested=")
            })?;
            // A request file needs no refspec: the base is --base.
            let text = if text.contains("refspec") {
                text
            } else {
                format!("[origin]\nrefspec={}\n{text}", args.base)
            };
            pkglayer_core::Origin::parse(&text).map_err(|err| {
                pkglayer_core::UserError::new(format!("{}: {err:#}", path.display()))
                    .hint("an origin file: [packages] requested=a;b;")
            })?
        }
        None => pkglayer_core::Origin::new(args.base.clone()),
    };
    let request = pkglayer_core::fleet::ComposeRequest {
        repo: args.repo.clone(),
        base: args.base.clone(),
        refname: args.refname.clone(),
        origin,
        packages: args.packages.clone(),
        lockfile: read_lockfile(args.lockfile.as_deref())?,
        workdir: args.workdir.clone(),
        repos: repo_options(
            &args.repos,
            if args.cache_only {
                Freshness::CacheOnly
            } else {
                Freshness::WhileFresh
            },
        ),
        static_delta: !args.no_static_delta,
    };
    let progress = progress::for_terminal(quiet, args.json);
    let report = pkglayer_core::fleet::compose(&request, progress.as_ref())?;
    let mut out = std::io::stdout().lock();
    render::composed(&mut out, &report, &args.refname, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// The lockfile `--lockfile` names, read and checked.
fn read_lockfile(path: Option<&std::path::Path>) -> Result<Option<Lockfile>> {
    path.map(Lockfile::read).transpose()
}

/// Prints a transaction's plan and outcome (or with `--json`, one JSON document); returns the exit
/// status.
fn render_transaction(
    out: &mut impl Write,
    report: &operation::Report,
    args: &TransactionArgs,
) -> Result<ExitCode> {
    render::skipped_repos(&report.plan.skipped_repos);
    render::module_problems(&report.plan.module_problems);
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &render::transaction_json(report))?;
        writeln!(out)?;
    } else {
        render::install_plan(out, &report.plan)?;
        match &report.outcome {
            Some(outcome) => {
                render::outcome(out, outcome)?;
                if let Some(changes) = &report.changes {
                    render::deployed_changes(out, changes)?;
                }
            }
            None if report.plan.unchanged => writeln!(out, "No change.")?,
            None => writeln!(out, "Dry run: nothing was changed.")?,
        }
    }
    if args.reboot
        && matches!(
            report.outcome,
            Some(pkglayer_core::layer::Outcome::Deployed { .. })
        )
    {
        reboot(out)?;
    }
    Ok(if report.unchanged() && args.unchanged_exit_77 {
        ExitCode::from(EXIT_UNCHANGED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Whether the command asks for `-r/--reboot`.
fn wants_reboot(command: &Command) -> bool {
    match command {
        Command::Install(args) => args.transaction.reboot,
        Command::Uninstall(args) => args.transaction.reboot,
        Command::Upgrade(args) => args.transaction.reboot,
        Command::Module(
            ModuleCommand::Enable(args)
            | ModuleCommand::Disable(args)
            | ModuleCommand::Install(args)
            | ModuleCommand::Uninstall(args),
        ) => args.transaction.reboot,
        Command::Reset(args) => args.transaction.reboot,
        Command::Deploy(args) => args.transaction.reboot,
        Command::Rebase(args) => args.transaction.reboot,
        Command::Override(OverrideCommand::Remove(args)) => args.transaction.reboot,
        Command::Override(OverrideCommand::Replace(args)) => args.transaction.reboot,
        Command::Override(OverrideCommand::Reset(args)) => args.transaction.reboot,
        Command::Rollback(args) => args.reboot,
        _ => false,
    }
}

/// Reboots the machine (into the new default deployment), as `rpm-ostree … --reboot` does.
fn reboot(out: &mut impl Write) -> Result<()> {
    writeln!(out, "Rebooting.")?;
    out.flush()?;
    let status = std::process::Command::new("systemctl")
        .arg("reboot")
        .status()
        .map_err(|err| anyhow::anyhow!("running systemctl reboot: {err}"))?;
    if !status.success() {
        return Err(pkglayer_core::UserError::new(format!(
            "systemctl reboot failed ({status}); the new deployment is in place"
        ))
        .hint("reboot by hand to start using it")
        .into());
    }
    Ok(())
}

/// `upgrade`: the newest base and layered packages; `--check` exits 77 when there is nothing newer.
/// The base `deploy` or `rebase` moved to, then the transaction on it.
fn render_base_move(
    out: &mut impl Write,
    moved: &operation::BaseMove,
    args: &TransactionArgs,
) -> Result<ExitCode> {
    if !args.json {
        let version = moved
            .version
            .as_ref()
            .map(|v| format!(" (version {v})"))
            .unwrap_or_default();
        if moved.from_refspec != moved.to_refspec {
            writeln!(
                out,
                "Rebasing: {} -> {}",
                moved.from_refspec, moved.to_refspec
            )?;
        }
        writeln!(out, "Base: {}{version}", moved.commit)?;
    }
    render_transaction(out, &moved.transaction, args)
}

fn upgrade(sysroot: &Sysroot, args: &UpgradeArgs, quiet: bool) -> Result<ExitCode> {
    let mut options = transaction_options(&args.transaction, args.download_only);
    options.lockfile = read_lockfile(args.lockfile.as_deref())?;
    let progress = progress::for_terminal(quiet, args.transaction.json);
    let report = operation::upgrade(sysroot, args.check, &options, progress.as_ref())?;
    let mut out = std::io::stdout().lock();
    if args.transaction.json {
        serde_json::to_writer_pretty(&mut out, &render::upgrade_json(&report))?;
        writeln!(out)?;
    } else {
        render::base_change(&mut out, &report.base)?;
        if let Some(transaction) = &report.transaction {
            let args = TransactionArgs {
                unchanged_exit_77: false,
                ..args.transaction.clone()
            };
            render_transaction(&mut out, transaction, &args)?;
        }
    }
    let unchanged = if args.check {
        !report.update_available()
    } else {
        args.transaction.unchanged_exit_77
            && report
                .transaction
                .as_ref()
                .is_some_and(operation::Report::unchanged)
    };
    Ok(if unchanged {
        ExitCode::from(EXIT_UNCHANGED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `automatic`: the automatic update policy, once; the run is recorded for `status` (a failure
/// too, before it is reported).
fn automatic(sysroot: &Sysroot, args: &cli::AutomaticArgs, quiet: bool) -> Result<ExitCode> {
    let options = operation::Options {
        reposdir: args.repos.reposdir.clone(),
        disable_repos: args.repos.disablerepo.clone(),
        enable_repos: args.repos.enablerepo.clone(),
        releasever: args.repos.releasever.clone(),
        cache_only: args.cache_only,
        ..Default::default()
    };
    let progress = progress::for_terminal(quiet, false);
    let config = args.config.as_deref();
    let run = pkglayer_core::automatic::run(sysroot, config, &options, progress.as_ref())?;
    let mut out = std::io::stdout().lock();
    if let Some(report) = &run.upgrade {
        render::base_change(&mut out, &report.base)?;
    }
    match &run.recorded {
        Some(recorded) => writeln!(
            out,
            "Automatic update ({}): {}: {}",
            run.policy,
            recorded.outcome.as_str(),
            recorded.message
        )?,
        None => writeln!(
            out,
            "Automatic updates are off (AutomaticUpdatePolicy={} in {}): nothing to do.",
            run.policy,
            run.config.display()
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

fn run(cli: &Cli) -> Result<ExitCode> {
    if let Command::Compose(args) = &cli.command {
        return compose(args, cli.quiet);
    }
    let mut sysroot = Sysroot::open(&cli.sysroot, cli.stateroot.as_deref())?;
    sysroot.set_wait_for_lock(!cli.no_wait);
    if wants_reboot(&cli.command) && sysroot.booted().is_none() {
        // Refused before anything is done: a reboot here would restart this machine, not boot
        // the sysroot's deployment.
        return Err(pkglayer_core::UserError::new(format!(
            "--reboot: the sysroot at {} is not the running system, so there is nothing to reboot into",
            cli.sysroot.display()
        ))
        .hint("leave out -r/--reboot; the new deployment is the default at that sysroot's next boot")
        .into());
    }
    let mut out = std::io::stdout().lock();
    match &cli.command {
        Command::Status(args) => {
            let mut status = status::status(&sysroot)?;
            if args.booted {
                status.deployments.retain(|d| d.booted);
            }
            if args.json {
                serde_json::to_writer_pretty(&mut out, &status)?;
                writeln!(out)?;
            } else {
                render::status(&mut out, &status, cli.verbose > 0, args.booted)?;
            }
            if args.pending_exit_77 && status.deployments.iter().any(|d| d.pending) {
                return Ok(ExitCode::from(EXIT_PENDING));
            }
        }
        Command::Install(args) => {
            let request = operation::InstallRequest {
                packages: args.packages.clone(),
                idempotent: args.idempotent,
                allow_inactive: args.allow_inactive,
                skip_scripts: args.skip_scripts.clone(),
            };
            let mut options = transaction_options(&args.transaction, args.download_only);
            options.lockfile = read_lockfile(args.lockfile.as_deref())?;
            let progress = progress::for_terminal(cli.quiet, args.transaction.json);
            let report = operation::install(&sysroot, &request, &options, progress.as_ref())?;
            return render_transaction(&mut out, &report, &args.transaction);
        }
        Command::Uninstall(args) => {
            let options = transaction_options(&args.transaction, false);
            let progress = progress::for_terminal(cli.quiet, args.transaction.json);
            let report = operation::uninstall(
                &sysroot,
                &args.packages,
                args.all,
                &options,
                progress.as_ref(),
            )?;
            return render_transaction(&mut out, &report, &args.transaction);
        }
        Command::Upgrade(args) => return upgrade(&sysroot, args, cli.quiet),
        Command::Compose(args) => return compose(args, cli.quiet),
        Command::Lock(args) => {
            let text = Lockfile::of_current(&sysroot)?.to_json();
            match &args.output {
                Some(path) => std::fs::write(path, text)
                    .with_context(|| format!("Writing {}", path.display()))?,
                None => out.write_all(text.as_bytes())?,
            }
        }
        Command::Automatic(args) => return automatic(&sysroot, args, cli.quiet),
        Command::Reset(args) => {
            let options = transaction_options(&args.transaction, false);
            let progress = progress::for_terminal(cli.quiet, args.transaction.json);
            let report = operation::reset(
                &sysroot,
                args.overlays,
                args.overrides,
                &options,
                progress.as_ref(),
            )?;
            return render_transaction(&mut out, &report, &args.transaction);
        }
        Command::Deploy(args) => {
            let options = transaction_options(&args.transaction, false);
            let progress = progress::for_terminal(cli.quiet, args.transaction.json);
            let moved = operation::deploy(&sysroot, &args.target, &options, progress.as_ref())?;
            return render_base_move(&mut out, &moved, &args.transaction);
        }
        Command::Rebase(args) => {
            let options = transaction_options(&args.transaction, false);
            let progress = progress::for_terminal(cli.quiet, args.transaction.json);
            let moved = operation::rebase(&sysroot, &args.refspec, &options, progress.as_ref())?;
            return render_base_move(&mut out, &moved, &args.transaction);
        }
        Command::Override(command) => {
            let (action, transaction) = match command {
                OverrideCommand::Remove(args) => (
                    operation::OverrideAction::Remove {
                        names: args.packages.clone(),
                        install: args.install.clone(),
                    },
                    &args.transaction,
                ),
                OverrideCommand::Replace(args) => (
                    match &args.from {
                        Some(from) => operation::OverrideAction::ReplaceRemote {
                            from: from.clone(),
                            names: args.packages.clone(),
                        },
                        None => operation::OverrideAction::ReplaceLocal {
                            files: args.packages.clone(),
                        },
                    },
                    &args.transaction,
                ),
                OverrideCommand::Reset(args) => (
                    operation::OverrideAction::Reset {
                        names: args.packages.clone(),
                        all: args.all,
                    },
                    &args.transaction,
                ),
            };
            let options = transaction_options(transaction, false);
            let progress = progress::for_terminal(cli.quiet, transaction.json);
            let report = operation::override_base(&sysroot, &action, &options, progress.as_ref())?;
            return render_transaction(&mut out, &report, transaction);
        }
        Command::Module(command) => {
            let (action, args) = match command {
                ModuleCommand::Enable(args) => (operation::ModuleAction::Enable, args),
                ModuleCommand::Disable(args) => (operation::ModuleAction::Disable, args),
                ModuleCommand::Install(args) => (operation::ModuleAction::Install, args),
                ModuleCommand::Uninstall(args) => (operation::ModuleAction::Uninstall, args),
            };
            let options = transaction_options(&args.transaction, false);
            let progress = progress::for_terminal(cli.quiet, args.transaction.json);
            let report =
                operation::module(&sysroot, action, &args.modules, &options, progress.as_ref())?;
            return render_transaction(&mut out, &report, &args.transaction);
        }
        Command::RefreshMd(args) => {
            let freshness = if args.force {
                Freshness::Refresh
            } else {
                Freshness::WhileFresh
            };
            let options = repo_options(&args.repos, freshness);
            let report = query::refresh_metadata(&sysroot, &options)?;
            render::skipped_repos(&report.skipped);
            render::refreshed(&mut out, &report)?;
        }
        Command::Search(args) => {
            let options = repo_options(&args.repos, Freshness::WhileFresh);
            let (found, sync) = query::search(&sysroot, &options, &args.terms)?;
            render::skipped_repos(&sync.skipped);
            if args.json {
                serde_json::to_writer_pretty(&mut out, &render::search_json(&found))?;
                writeln!(out)?;
            } else {
                render::search(&mut out, &found)?;
            }
        }
        Command::Rollback(args) => {
            let target = operation::rollback(&sysroot)?;
            render::rolled_back(&mut out, &deploy::deployment_id(&target))?;
            if args.reboot {
                reboot(&mut out)?;
            }
        }
        Command::Cleanup(args) => {
            let request = operation::CleanupRequest {
                pending: args.pending,
                rollback: args.rollback,
            };
            if args.pending || args.rollback {
                let outcome = operation::cleanup(&sysroot, request)?;
                render::cleanup(&mut out, &outcome)?;
            }
            if args.cache {
                render::cache_cleaned(&mut out, &operation::clean_cache(&sysroot)?)?;
            }
        }
        Command::Db(DbCommand::Diff(args)) => {
            let diff = query::diff(&sysroot, args.from.as_deref(), args.to.as_deref())?;
            if args.json {
                serde_json::to_writer_pretty(&mut out, &diff.diff)?;
                writeln!(out)?;
            } else {
                render::db_diff(&mut out, &diff.from, &diff.to, &diff.diff)?;
            }
        }
        Command::Db(DbCommand::List(args)) => {
            for nevra in query::packages(&sysroot, args.deployment.as_deref())? {
                writeln!(out, "{nevra}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
