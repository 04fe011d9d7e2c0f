//! pkglayer's command line: parse arguments, call the library, render the result.
//!
//! Exit status: 0 success; 1 a failure the user can act on (`error: …` and maybe `hint: …`);
//! 2 misuse (clap) or an internal error (a panic).

mod cli;
mod render;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use pkglayer_core::plan::{self, RepoOptions};
use pkglayer_core::repo::{Fetcher, Freshness};
use pkglayer_core::{Sysroot, deploy, rpmdb, status};

use cli::{Cli, Command, DbCommand};

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error: {info}");
        eprintln!("hint: this is a bug in pkglayer; please report it with the command you ran");
        std::process::exit(2);
    }));
    let cli = Cli::parse();
    init_logging(&cli);
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
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
        .with_target(false)
        .without_time()
        .init();
}

fn run(cli: &Cli) -> Result<()> {
    let sysroot = Sysroot::open(&cli.sysroot, cli.stateroot.as_deref())?;
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
            let options = RepoOptions {
                reposdir: args.repos.reposdir.clone(),
                freshness: if args.cache_only {
                    Freshness::CacheOnly
                } else {
                    Freshness::WhileFresh
                },
            };
            let plan = plan::plan_install(&sysroot, &args.packages, &options)?;
            render::skipped_repos(&plan.skipped_repos);
            if args.json {
                serde_json::to_writer_pretty(&mut out, &render::install_plan_json(&plan))?;
                writeln!(out)?;
            } else {
                render::install_plan(&mut out, &plan)?;
            }
        }
        Command::RefreshMd(args) => {
            let options = RepoOptions {
                reposdir: args.repos.reposdir.clone(),
                freshness: if args.force {
                    Freshness::Refresh
                } else {
                    Freshness::WhileFresh
                },
            };
            let report = plan::sync_metadata(&sysroot, &options, &Fetcher::new())?;
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
            let outcome = deploy::cleanup(&sysroot, request)?;
            render::cleanup(&mut out, &outcome)?;
        }
        Command::Db(DbCommand::List(args)) => {
            let commit = sysroot.resolve_commit(args.deployment.as_deref())?;
            for nevra in rpmdb::packages_in_commit(&sysroot.repo(), &commit)? {
                writeln!(out, "{nevra}")?;
            }
        }
    }
    Ok(())
}
