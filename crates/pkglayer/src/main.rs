//! pkglayer's command line: parse arguments, call the library, render the result.
//!
//! Exit status: 0 success; 1 a failure the user can act on (`error: …` and maybe `hint: …`);
//! 2 misuse (clap) or an internal error (a panic).

mod cli;
mod progress;
mod render;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use pkglayer_core::base::{self, BaseFetch};
use pkglayer_core::layer::{self, ApplyOptions};
use pkglayer_core::plan::{self, RepoOptions};
use pkglayer_core::repo::{Fetcher, Freshness};
use pkglayer_core::{Origin, Sysroot, cache, deploy, rpmdb, status};

use cli::{Cli, Command, DbCommand, TransactionArgs, UpgradeArgs};

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error: {info}");
        eprintln!("hint: this is a bug in pkglayer; please report it with the command you ran");
        std::process::exit(2);
    }));
    let cli = Cli::parse();
    init_logging(&cli);
    match run(&cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            if let Some(hint) = pkglayer_core::error::hint_of(&err) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(1)
        }
    }
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
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}

/// Exit status for "nothing changed" under `--unchanged-exit-77`.
const EXIT_UNCHANGED: u8 = 77;

/// A change of the layer: the request it leads to, the base it goes on, and how to carry it out.
struct Transaction<'a> {
    origin: Origin,
    base_commit: String,
    args: &'a TransactionArgs,
    allow_inactive: bool,
    /// Ask every repo for new metadata even while the cached copy is fresh (upgrade).
    refresh_metadata: bool,
    apply: ApplyOptions,
}

/// Plans the layer for the transaction's request, prints it, and (unless a dry run) applies it.
fn run_transaction(sysroot: &Sysroot, transaction: &Transaction, quiet: bool) -> Result<ExitCode> {
    let args = transaction.args;
    let options = RepoOptions {
        reposdir: args.repos.reposdir.clone(),
        freshness: if args.cache_only {
            Freshness::CacheOnly
        } else if transaction.refresh_metadata {
            Freshness::Refresh
        } else {
            Freshness::WhileFresh
        },
        allow_inactive: transaction.allow_inactive,
    };
    let plan = plan::plan(
        sysroot,
        &transaction.origin,
        &transaction.base_commit,
        &options,
    )?;
    render::skipped_repos(&plan.skipped_repos);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &render::install_plan_json(&plan))?;
        writeln!(out)?;
    } else {
        render::install_plan(&mut out, &plan)?;
    }
    if args.dry_run {
        if plan.added.is_empty() && plan.removed.is_empty() && !args.json {
            writeln!(out, "No change.")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let progress = progress::for_terminal(quiet, args.json);
    let outcome = layer::apply(
        sysroot,
        &plan,
        &transaction.origin,
        transaction.apply,
        progress.as_ref(),
    )?;
    let unchanged = matches!(outcome, layer::Outcome::NoChange);
    if !args.json {
        render::outcome(&mut out, &outcome)?;
    }
    Ok(if unchanged && args.unchanged_exit_77 {
        ExitCode::from(EXIT_UNCHANGED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `upgrade`: the newest base from the remote, the request resolved again on it.
fn upgrade(sysroot: &Sysroot, args: &UpgradeArgs, quiet: bool) -> Result<ExitCode> {
    let origin = sysroot.origin(&sysroot.latest())?;
    let fetch = if args.transaction.cache_only {
        BaseFetch::Local
    } else if args.check {
        BaseFetch::CommitOnly
    } else {
        BaseFetch::Pull
    };
    let repo = sysroot.repo();
    let current = base::current_base(sysroot)?;
    let newest = base::newest_base(sysroot, &origin, fetch)?;
    let version = |commit: &str| -> Result<String> {
        Ok(base::version_of(&repo, commit)?.unwrap_or_else(|| commit[..12].to_string()))
    };
    {
        let mut out = std::io::stdout().lock();
        if newest == current {
            writeln!(
                out,
                "Base {}: up to date ({})",
                origin.refspec,
                version(&current)?
            )?;
        } else {
            writeln!(
                out,
                "Base {}: {} -> {} ({newest})",
                origin.refspec,
                version(&current)?,
                version(&newest)?
            )?;
        }
    }
    if args.check && newest != current {
        // Only the new commit object is here; its packages resolve once the base is pulled.
        return Ok(ExitCode::SUCCESS);
    }
    let mut transaction_args = args.transaction.clone();
    transaction_args.dry_run |= args.check;
    let transaction = Transaction {
        origin,
        base_commit: newest,
        args: &transaction_args,
        allow_inactive: false,
        // Like rpm-ostree, an upgrade asks every repo whether it changed (a repomd.xml each).
        refresh_metadata: true,
        apply: ApplyOptions {
            download_only: args.download_only,
        },
    };
    run_transaction(sysroot, &transaction, quiet)
}

/// What `db diff` compares without arguments: booted -> pending, or rollback -> current.
fn default_diff_pair(sysroot: &Sysroot) -> Result<(String, String)> {
    let pair = match (sysroot.booted(), sysroot.pending()) {
        (Some(booted), Some(pending)) => Some((booted, pending)),
        _ => sysroot
            .rollback()
            .map(|rollback| (rollback, sysroot.current())),
    };
    let (from, to) = pair.ok_or_else(|| {
        pkglayer_core::UserError::new("there is only one deployment to compare")
            .hint("name two deployments or commits: `pkglayer db diff FROM TO`")
    })?;
    Ok((from.csum().to_string(), to.csum().to_string()))
}

fn run(cli: &Cli) -> Result<ExitCode> {
    let mut sysroot = Sysroot::open(&cli.sysroot, cli.stateroot.as_deref())?;
    sysroot.set_wait_for_lock(!cli.no_wait);
    let mut out = std::io::stdout().lock();
    match &cli.command {
        Command::Status(args) => {
            let status = status::status(&sysroot)?;
            if args.json {
                serde_json::to_writer_pretty(&mut out, &status)?;
                writeln!(out)?;
            } else {
                render::status(&mut out, &status, cli.verbose > 0)?;
            }
        }
        Command::Install(args) => {
            let repos = RepoOptions {
                reposdir: args.transaction.repos.reposdir.clone(),
                freshness: Freshness::WhileFresh,
                allow_inactive: args.allow_inactive,
            };
            let mut origin = plan::request_with(&sysroot, &args.packages, args.idempotent, &repos)?;
            origin
                .skip_scripts
                .extend(args.skip_scripts.iter().cloned());
            let transaction = Transaction {
                origin,
                base_commit: base::current_base(&sysroot)?,
                args: &args.transaction,
                allow_inactive: args.allow_inactive,
                refresh_metadata: false,
                apply: ApplyOptions {
                    download_only: args.download_only,
                },
            };
            return run_transaction(&sysroot, &transaction, cli.quiet);
        }
        Command::Uninstall(args) => {
            let transaction = Transaction {
                origin: plan::request_without(&sysroot, &args.packages, args.all)?,
                base_commit: base::current_base(&sysroot)?,
                args: &args.transaction,
                allow_inactive: false,
                refresh_metadata: false,
                apply: ApplyOptions::default(),
            };
            return run_transaction(&sysroot, &transaction, cli.quiet);
        }
        Command::Upgrade(args) => return upgrade(&sysroot, args, cli.quiet),
        Command::RefreshMd(args) => {
            let options = RepoOptions {
                reposdir: args.repos.reposdir.clone(),
                freshness: if args.force {
                    Freshness::Refresh
                } else {
                    Freshness::WhileFresh
                },
                allow_inactive: false,
            };
            let base = base::current_base(&sysroot)?;
            let report = plan::sync_metadata(&sysroot, &options, &base, &Fetcher::new(), true)?;
            render::skipped_repos(&report.skipped);
            render::refreshed(&mut out, &report)?;
        }
        Command::Rollback => {
            let target = deploy::rollback(&sysroot)?;
            writeln!(
                out,
                "Deployment {} is the default again; it boots next.",
                deploy::deployment_id(&target)
            )?;
        }
        Command::Cleanup(args) => {
            let request = deploy::CleanupRequest {
                pending: args.pending,
                rollback: args.rollback,
            };
            if args.pending || args.rollback {
                let outcome = deploy::cleanup(&sysroot, request)?;
                render::cleanup(&mut out, &outcome)?;
            }
            if args.cache {
                let outcome = cache::clean(&sysroot)?;
                writeln!(
                    out,
                    "Removed {} cached packages, {} script results, {} cache entries and {} scratch \
                     directories.",
                    outcome.packages,
                    outcome.script_results,
                    outcome.cache_entries,
                    outcome.scratch
                )?;
            }
        }
        Command::Db(DbCommand::Diff(args)) => {
            let (from, to) = match (&args.from, &args.to) {
                (Some(from), Some(to)) => (
                    sysroot.resolve_commit(Some(from))?,
                    sysroot.resolve_commit(Some(to))?,
                ),
                (Some(from), None) => (
                    sysroot.resolve_commit(Some(from))?,
                    sysroot.latest().csum().to_string(),
                ),
                (None, _) => default_diff_pair(&sysroot)?,
            };
            let repo = sysroot.repo();
            let diff = rpmdb::diff(
                &rpmdb::packages_in_commit(&repo, &from)?,
                &rpmdb::packages_in_commit(&repo, &to)?,
            );
            if args.json {
                serde_json::to_writer_pretty(&mut out, &diff)?;
                writeln!(out)?;
            } else {
                render::db_diff(&mut out, &from, &to, &diff)?;
            }
        }
        Command::Db(DbCommand::List(args)) => {
            let commit = sysroot.resolve_commit(args.deployment.as_deref())?;
            for nevra in rpmdb::packages_in_commit(&sysroot.repo(), &commit)? {
                writeln!(out, "{nevra}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
