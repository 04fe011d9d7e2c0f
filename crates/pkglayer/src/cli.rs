//! The command line: one options struct per verb. `--help` is generated from these definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The `--help` heading of the options every command takes, listed after a command's own.
const GLOBAL: &str = "Global options";

/// Layer RPM packages on an OSTree-based operating system.
///
/// Every change builds a new deployment for the next boot; the running system is never modified, and
/// `pkglayer rollback` goes back.
#[derive(Debug, Parser)]
#[command(name = "pkglayer", version, propagate_version = true)]
pub struct Cli {
    /// The OSTree sysroot to operate on.
    #[arg(long, global = true, value_name = "DIR", default_value = "/", help_heading = GLOBAL)]
    pub sysroot: PathBuf,

    /// The stateroot (OS name); default: the booted deployment's, or the only one.
    #[arg(long = "os", global = true, value_name = "NAME", help_heading = GLOBAL)]
    pub stateroot: Option<String>,

    /// More detail: -v for details and info logs, -vv for debug logs.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,

    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = GLOBAL)]
    pub quiet: bool,

    /// Fail at once when another operation holds the sysroot lock, instead of waiting for it.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub no_wait: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the deployments (booted ●, pending, rollback), their base and layered packages.
    Status(StatusArgs),
    /// Layer packages (names, provides or file paths) from the repos onto the base.
    #[command(visible_alias = "add")]
    Install(InstallArgs),
    /// Remove requested packages from the layer (never base packages or mere dependencies).
    #[command(visible_alias = "remove")]
    Uninstall(UninstallArgs),
    /// Move to the vendor's newest base and the newest layered packages, in one new deployment.
    Upgrade(UpgradeArgs),
    /// Write the current deployment's layer exactly (base commit, packages with sha256 and repo).
    Lock(LockArgs),
    /// On a build machine: layer packages on a base of an archive repo and commit the result there
    /// under a ref, for hosts to pull (summary updated, static delta from the base). No sysroot.
    Compose(ComposeArgs),
    /// Fetch repo metadata now.
    RefreshMd(RefreshMdArgs),
    /// Find packages of the enabled repos by words of their name or summary.
    Search(SearchArgs),
    /// Make the previous deployment the default again.
    Rollback(RollbackArgs),
    /// Remove the pending and/or rollback deployment, and/or what no deployment uses from the caches.
    Cleanup(CleanupArgs),
    /// Query the rpm database of deployments.
    #[command(subcommand)]
    Db(DbCommand),
    /// Enable module streams or install their profiles, as dnf's modules (kept in the origin).
    #[command(subcommand)]
    Module(ModuleCommand),
    /// Remove or replace packages of the base, or go back to the base's own (kept in the origin).
    #[command(subcommand)]
    Override(OverrideCommand),
    /// Go back to the vendor's tree: drop layered packages and overrides (or only one kind).
    Reset(ResetArgs),
    /// Pin the base to a VERSION or COMMIT of the followed branch's history (`upgrade` unpins).
    Deploy(DeployArgs),
    /// Follow another branch (`REF`, or `REMOTE:REF`), keeping layered packages and overrides.
    Rebase(RebaseArgs),
    /// Run the automatic update policy once (what pkglayer-automatic.timer starts).
    ///
    /// The policy is `AutomaticUpdatePolicy=` in the `[Daemon]` group of /etc/pkglayer/pkglayer.conf:
    /// `none` (the default) does nothing, `check` looks for a newer base or newer layered packages
    /// as `upgrade --check` does, `stage` upgrades: downloads the update and deploys it for the next
    /// boot (it never reboots). Each run but `none` is recorded; `status` shows the last one.
    Automatic(AutomaticArgs),
}

#[derive(Debug, Args)]
pub struct AutomaticArgs {
    /// Read the policy from FILE instead of the current deployment's /etc/pkglayer/pkglayer.conf.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Use cached repo metadata and packages only; never touch the network.
    #[arg(long, short = 'C')]
    pub cache_only: bool,
    #[command(flatten)]
    pub repos: RepoArgs,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Drop only the layered packages (and module requests).
    #[arg(long)]
    pub overlays: bool,
    /// Drop only the overrides of base packages.
    #[arg(long)]
    pub overrides: bool,
    #[command(flatten)]
    pub transaction: TransactionArgs,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// A version (the commit's `version`) or a full commit checksum.
    #[arg(value_name = "VERSION|COMMIT")]
    pub target: String,
    #[command(flatten)]
    pub transaction: TransactionArgs,
}

#[derive(Debug, Args)]
pub struct RebaseArgs {
    /// The ref to follow: `REF` (on the same remote) or `REMOTE:REF`.
    #[arg(value_name = "REFSPEC")]
    pub refspec: String,
    #[command(flatten)]
    pub transaction: TransactionArgs,
}

/// `override` subcommands: each changes the origin's `[overrides]` and deploys the result.
#[derive(Debug, Subcommand)]
pub enum OverrideCommand {
    /// Go without base packages: their files and their rpm database entries.
    Remove(OverrideRemoveArgs),
    /// Replace base packages by local RPM files (each replaces the base package of its name), or
    /// by a repo's builds (`--from repo=ID PKG…`).
    Replace(OverrideReplaceArgs),
    /// Drop overrides: the base's own packages again.
    Reset(OverrideResetArgs),
}

#[derive(Debug, Args)]
pub struct OverrideRemoveArgs {
    /// Names of base packages.
    #[arg(required = true, value_name = "PKG")]
    pub packages: Vec<String>,
    /// Also layer PKG, in the same transaction.
    #[arg(long, value_name = "PKG")]
    pub install: Vec<String>,
    #[command(flatten)]
    pub transaction: TransactionArgs,
}

#[derive(Debug, Args)]
pub struct OverrideReplaceArgs {
    /// Paths of local .rpm files; with --from, names of base packages.
    #[arg(required = true, value_name = "RPM|PKG")]
    pub packages: Vec<String>,
    /// Take the base packages named from a repo instead (`repo=ID`): its newest builds, now and
    /// at each upgrade.
    #[arg(long, value_name = "repo=ID")]
    pub from: Option<String>,
    #[command(flatten)]
    pub transaction: TransactionArgs,
}

#[derive(Debug, Args)]
pub struct OverrideResetArgs {
    /// Names of overridden base packages.
    #[arg(
        value_name = "PKG",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub packages: Vec<String>,
    /// Drop every override.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub transaction: TransactionArgs,
}

/// `module` subcommands: each changes the origin's `[modules]` and deploys the result.
#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// Make streams' packages visible (`nodejs:18`), replacing the default stream of their module.
    Enable(ModuleArgs),
    /// Drop streams enabled with `module enable`.
    Disable(ModuleArgs),
    /// Enable streams and layer a profile's packages (`nodejs:18/common`; the default profile
    /// without `/PROFILE`, the enabled or default stream without `:STREAM`).
    Install(ModuleArgs),
    /// Drop profiles installed with `module install`.
    Uninstall(ModuleArgs),
}

#[derive(Debug, Args)]
pub struct ModuleArgs {
    /// Module streams: `NAME:STREAM`, for install also `NAME:STREAM/PROFILE`.
    #[arg(required = true, value_name = "MODULE")]
    pub modules: Vec<String>,
    #[command(flatten)]
    pub transaction: TransactionArgs,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words every package found has in its name or summary (case aside).
    #[arg(required = true, value_name = "TERM")]
    pub terms: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub repos: RepoArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON (rpm-ostree's key names) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Show only the booted deployment.
    #[arg(short = 'b', long)]
    pub booted: bool,
    /// Exit with 77 when a deployment is pending (deployed since boot, waiting for a reboot).
    #[arg(long)]
    pub pending_exit_77: bool,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Packages: names, provides (`text-editor`), file paths (`/usr/bin/strace`), `name-version`,
    /// local `.rpm` files.
    #[arg(required_unless_present = "lockfile", value_name = "PKG")]
    pub packages: Vec<String>,
    /// Layer exactly the packages of FILE (`pkglayer lock`), on its base (this deployment's), or
    /// fail naming those the repos do not have. PKG may then only be the .rpm files of its local
    /// packages.
    #[arg(long, value_name = "FILE")]
    pub lockfile: Option<PathBuf>,
    /// Fetch and import the packages, deploy nothing.
    #[arg(long, conflicts_with = "dry_run")]
    pub download_only: bool,
    /// Accept packages that are already requested.
    #[arg(long)]
    pub idempotent: bool,
    /// Accept packages the base already provides (recorded; they layer nothing).
    #[arg(long)]
    pub allow_inactive: bool,
    /// Never run the scripts and file triggers of package NAME (remembered for later upgrades).
    #[arg(long, value_name = "NAME")]
    pub skip_scripts: Vec<String>,
    #[command(flatten)]
    pub transaction: TransactionArgs,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Requested packages to remove from the layer.
    #[arg(
        value_name = "PKG",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub packages: Vec<String>,
    /// Remove every layered package: back to the plain base.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub transaction: TransactionArgs,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Say whether a newer base exists (fetching only its commit object); change nothing.
    #[arg(long, conflicts_with = "download_only")]
    pub check: bool,
    /// Fetch the base and the packages, deploy nothing.
    #[arg(long)]
    pub download_only: bool,
    /// Move to the base and exactly the packages of FILE (`pkglayer lock`), or fail naming those
    /// the repos do not have.
    #[arg(long, value_name = "FILE")]
    pub lockfile: Option<PathBuf>,
    #[command(flatten)]
    pub transaction: TransactionArgs,
}

#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// The archive-mode OSTree repo that holds the base and receives the layered commit.
    #[arg(long, value_name = "REPO")]
    pub repo: PathBuf,
    /// The base: a ref or commit of REPO.
    #[arg(long, value_name = "REF")]
    pub base: String,
    /// The ref to write the layered commit to.
    #[arg(long = "ref", value_name = "REF")]
    pub refname: String,
    /// The request as an origin file: `[packages] requested=`/`requested-local=`, `[overrides]`,
    /// `[modules] enable=`/`install=`, `[pkglayer] skip-scripts=`; local packages' files as PKG.
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
    /// Layer exactly the packages of FILE (`pkglayer lock`); its base must be the base. PKG may
    /// then only be the .rpm files of its local packages.
    #[arg(long, value_name = "FILE", conflicts_with = "request")]
    pub lockfile: Option<PathBuf>,
    /// Packages to request (names, provides, paths, local `.rpm` files), besides those of
    /// --request; the .rpm files of its `requested-local=` and `replace-local=` packages.
    #[arg(value_name = "PKG")]
    pub packages: Vec<String>,
    /// The build machine's work folder: package cache, repo metadata, downloads (kept between runs).
    #[arg(long, value_name = "DIR")]
    pub workdir: PathBuf,
    /// Do not generate the static delta from the base.
    #[arg(long)]
    pub no_static_delta: bool,
    /// Use cached repo metadata and packages only.
    #[arg(long, short = 'C')]
    pub cache_only: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub repos: RepoArgs,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Write the lockfile to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Reboot into it (only on the running system).
    #[arg(short = 'r', long)]
    pub reboot: bool,
}

/// Options of every verb that changes the layer.
#[derive(Debug, Clone, Args)]
pub struct TransactionArgs {
    /// Reboot into the new deployment once it is deployed (only on the running system; nothing
    /// happens when nothing changed).
    #[arg(short = 'r', long, conflicts_with = "dry_run")]
    pub reboot: bool,
    /// Resolve and print the transaction; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Use cached repo metadata and packages only; never touch the network.
    #[arg(long, short = 'C')]
    pub cache_only: bool,
    /// Exit with 77 when nothing changed.
    #[arg(long)]
    pub unchanged_exit_77: bool,
    /// Answer yes (pkglayer never asks; accepted for rpm-ostree and dnf habits).
    #[arg(short = 'y', long = "assumeyes")]
    pub assume_yes: bool,
    /// Print the transaction as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub repos: RepoArgs,
}

#[derive(Debug, Args)]
pub struct RefreshMdArgs {
    /// Fetch even metadata that has not expired.
    #[arg(long, short)]
    pub force: bool,
    #[command(flatten)]
    pub repos: RepoArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RepoArgs {
    /// Read *.repo files from DIR instead of the deployment's /etc/yum.repos.d.
    #[arg(long, value_name = "DIR")]
    pub reposdir: Option<PathBuf>,
    /// Disable the repos whose id matches GLOB for this command (before --enablerepo).
    #[arg(long, value_name = "GLOB")]
    pub disablerepo: Vec<String>,
    /// Enable the repos whose id matches GLOB for this command.
    #[arg(long, value_name = "GLOB")]
    pub enablerepo: Vec<String>,
    /// $releasever in *.repo files, instead of the base's os-release VERSION_ID.
    #[arg(long, value_name = "VERSION")]
    pub releasever: Option<String>,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(true))]
pub struct CleanupArgs {
    /// Remove the pending deployment (deployed since boot).
    #[arg(short, long, group = "what")]
    pub pending: bool,
    /// Remove the rollback deployment.
    #[arg(short, long, group = "what")]
    pub rollback: bool,
    /// Drop cached packages and metadata caches no deployment uses.
    #[arg(long, group = "what")]
    pub cache: bool,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// List the packages of a deployment (default: the booted one, or offline the default), one NEVRA
    /// a line, sorted.
    List(DbListArgs),
    /// Packages added, removed and changed between two deployments (default: from the rollback, or
    /// the booted one when something is pending, to the current or pending one).
    Diff(DbDiffArgs),
}

#[derive(Debug, Args)]
pub struct DbDiffArgs {
    /// Deployment index, checksum prefix, or commit to compare from.
    pub from: Option<String>,
    /// Deployment index, checksum prefix, or commit to compare to.
    pub to: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DbListArgs {
    /// A deployment index as `status` lists them (0 = first), a deployment's checksum or a prefix of
    /// it, or any commit or ref in the sysroot's repo.
    pub deployment: Option<String>,
}
