//! Automatic updates, as `rpm-ostreed-automatic.timer` does them for rpm-ostree: a timer runs
//! `pkglayer automatic`, which does what the policy of `/etc/pkglayer/pkglayer.conf` says and
//! records the run in the stateroot's state, for `status` to show.
//!
//! The policy is `[Daemon] AutomaticUpdatePolicy=` (rpm-ostreed.conf's group and key): `none`
//! (the default; `off` too) does nothing and writes nothing, `check` looks for an update as
//! `upgrade --check` does, `stage` upgrades (downloads the update and deploys it for the next boot;
//! it never reboots). The configuration is read from the `/etc` of the deployment operations run
//! from (on a booted host the running `/etc`), so an offline sysroot carries its own.
//!
//! The last run (time, policy, outcome, message) is a key file in the state folder
//! ([`State::automatic_updates`](crate::layout::State::automatic_updates)), replaced whole by each
//! run: `no-update`, `update-available`, `deployed` or `failed` with the error.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use glib::KeyFile;
use serde::Serialize;

use crate::error::UserError;
use crate::layer::Outcome as LayerOutcome;
use crate::layout::State;
use crate::operation::{self, UpgradeReport};
use crate::progress::Progress;
use crate::sysroot::Sysroot;

/// Where the configuration is, relative to a deployment's root (`/etc/pkglayer/pkglayer.conf`).
pub const CONFIG_PATH: &str = "etc/pkglayer/pkglayer.conf";

const CONFIG_GROUP: &str = "Daemon";
const POLICY_KEY: &str = "AutomaticUpdatePolicy";
const RECORD_GROUP: &str = "LastRun";

/// What an automatic run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Nothing.
    None,
    /// Look for an update (a newer base or newer layered packages), deploy nothing.
    Check,
    /// Download the update and deploy it for the next boot.
    Stage,
}

impl Policy {
    /// The policy's name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Check => "check",
            Policy::Stage => "stage",
        }
    }

    /// A value of `AutomaticUpdatePolicy=` (case aside; `off` is rpm-ostree's old name for none).
    pub fn parse(value: &str) -> Option<Policy> {
        match value.trim().to_ascii_lowercase().as_str() {
            "none" | "off" => Some(Policy::None),
            "check" => Some(Policy::Check),
            "stage" => Some(Policy::Stage),
            _ => None,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an automatic run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Nothing newer than what is deployed.
    NoUpdate,
    /// `check` found an update; nothing was deployed.
    UpdateAvailable,
    /// `stage` deployed the update for the next boot.
    Deployed,
    /// The run failed; the message says why.
    Failed,
}

impl Outcome {
    /// The outcome's name in the record and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NoUpdate => "no-update",
            Outcome::UpdateAvailable => "update-available",
            Outcome::Deployed => "deployed",
            Outcome::Failed => "failed",
        }
    }

    fn parse(value: &str) -> Option<Outcome> {
        [
            Outcome::NoUpdate,
            Outcome::UpdateAvailable,
            Outcome::Deployed,
            Outcome::Failed,
        ]
        .into_iter()
        .find(|outcome| outcome.as_str() == value)
    }

    /// The outcome in words, for `status`.
    fn words(self) -> &'static str {
        match self {
            Outcome::NoUpdate => "no update",
            Outcome::UpdateAvailable => "update available",
            Outcome::Deployed => "deployed",
            Outcome::Failed => "failed",
        }
    }
}

/// One automatic run, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct LastRun {
    /// When it ended, seconds since the epoch.
    pub timestamp: i64,
    /// The policy it ran.
    pub policy: Policy,
    /// How it ended.
    pub outcome: Outcome,
    /// What it found or deployed, or the error.
    pub message: String,
}

impl LastRun {
    /// The record as a key file.
    fn to_keyfile(&self) -> String {
        let keyfile = KeyFile::new();
        keyfile.set_int64(RECORD_GROUP, "Timestamp", self.timestamp);
        keyfile.set_string(RECORD_GROUP, "Time", &format_time(self.timestamp));
        keyfile.set_string(RECORD_GROUP, "Policy", self.policy.as_str());
        keyfile.set_string(RECORD_GROUP, "Outcome", self.outcome.as_str());
        keyfile.set_string(RECORD_GROUP, "Message", &self.message);
        keyfile.to_data().to_string()
    }

    fn from_keyfile(text: &str) -> Result<LastRun> {
        let keyfile = KeyFile::new();
        keyfile.load_from_data(text, glib::KeyFileFlags::NONE)?;
        let string = |key: &str| -> Result<String> {
            Ok(keyfile
                .string(RECORD_GROUP, key)
                .with_context(|| format!("no {key}="))?
                .to_string())
        };
        let policy = string("Policy")?;
        let outcome = string("Outcome")?;
        Ok(LastRun {
            timestamp: keyfile.int64(RECORD_GROUP, "Timestamp")?,
            policy: Policy::parse(&policy).with_context(|| format!("unknown policy {policy:?}"))?,
            outcome: Outcome::parse(&outcome)
                .with_context(|| format!("unknown outcome {outcome:?}"))?,
            message: string("Message")?,
        })
    }
}

/// The automatic updates of a stateroot, as `status` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Summary {
    /// The configured policy; `None` when the configuration could not be read (see `error`).
    pub policy: Option<Policy>,
    /// The last recorded run.
    pub last_run: Option<LastRun>,
    /// Why the configuration or the record could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Summary {
    /// `AutomaticUpdates: stage; last run 2026-11-30T07:00:00Z: deployed …`; nothing when automatic
    /// updates are off and never ran.
    pub fn line(&self) -> Option<String> {
        let policy = match (self.policy, &self.error) {
            (_, Some(error)) => format!("unknown ({error})"),
            (Some(Policy::None), None) if self.last_run.is_none() => return None,
            (Some(Policy::None), None) => "disabled".to_string(),
            (Some(policy), None) => policy.to_string(),
            (None, None) => "unknown".to_string(),
        };
        let last = match &self.last_run {
            None => "no runs yet".to_string(),
            Some(run) => {
                let mut last = format!(
                    "last run {}: {}",
                    format_time(run.timestamp),
                    run.outcome.words()
                );
                if run.policy != self.policy.unwrap_or(run.policy) {
                    last.push_str(&format!(" (policy {})", run.policy));
                }
                // One line, whatever the message: status has a line a fact.
                let message = run.message.split_whitespace().collect::<Vec<_>>().join(" ");
                if !message.is_empty() {
                    last.push_str(&format!(": {message}"));
                }
                last
            }
        };
        Some(format!("AutomaticUpdates: {policy}; {last}"))
    }
}

/// The configuration file of the deployment operations run from (on a booted host, the running
/// `/etc`'s).
pub fn config_path(sysroot: &Sysroot) -> PathBuf {
    sysroot
        .deployment_path(&sysroot.current())
        .join(CONFIG_PATH)
}

/// The configuration file to read, and its name in messages: the deployment's is named as the host
/// sees it, `/etc/pkglayer/pkglayer.conf`.
fn config_file(sysroot: &Sysroot, config: Option<&Path>) -> (PathBuf, PathBuf) {
    match config {
        Some(path) => (path.to_path_buf(), path.to_path_buf()),
        None => (config_path(sysroot), Path::new("/").join(CONFIG_PATH)),
    }
}

/// The policy `text` (a `pkglayer.conf`) sets; `path` names it in errors.
pub fn parse_config(text: &str, path: &Path) -> Result<Policy> {
    let keyfile = KeyFile::new();
    keyfile
        .load_from_data(text, glib::KeyFileFlags::NONE)
        .map_err(|err| {
            UserError::new(format!("{} is not a valid key file: {err}", path.display()))
                .hint("it holds `[Daemon]` and `AutomaticUpdatePolicy=none|check|stage`")
        })?;
    let Ok(value) = keyfile.string(CONFIG_GROUP, POLICY_KEY) else {
        return Ok(Policy::None);
    };
    Policy::parse(&value).ok_or_else(|| {
        UserError::new(format!(
            "{}: unknown {POLICY_KEY}={value}",
            path.display()
        ))
        .hint("the policies are none, check (look for updates) and stage (deploy them for the next boot)")
        .into()
    })
}

/// The policy the configuration at `path` sets (`name` names it in errors); none when the file
/// does not exist.
pub fn read_policy(path: &Path, name: &Path) -> Result<Policy> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_config(&text, name),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Policy::None),
        Err(err) => Err(err).with_context(|| format!("Reading {}", name.display())),
    }
}

/// The last recorded run, if any.
pub fn last_run(state: &State) -> Result<Option<LastRun>> {
    let path = state.automatic_updates();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("Reading {}", path.display())),
    };
    LastRun::from_keyfile(&text)
        .map(Some)
        .with_context(|| format!("Reading {}", path.display()))
}

/// Replaces the record of the last run (atomically: a reader sees the old or the new one).
fn record(state: &State, run: &LastRun) -> Result<()> {
    let path = state.automatic_updates();
    let dir = path.parent().expect("the record is in the state folder");
    std::fs::create_dir_all(dir).with_context(|| format!("Creating {}", dir.display()))?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut file, run.to_keyfile().as_bytes())?;
    file.persist(&path)
        .with_context(|| format!("Writing {}", path.display()))?;
    Ok(())
}

/// The automatic updates of the sysroot's stateroot: policy and last run. Never fails: what cannot
/// be read is said in [`Summary::error`].
pub fn summary(sysroot: &Sysroot) -> Summary {
    let (config, name) = config_file(sysroot, None);
    let (policy, config_error) = match read_policy(&config, &name) {
        Ok(policy) => (Some(policy), None),
        Err(err) => (None, Some(format!("{err:#}"))),
    };
    let (last_run, record_error) = match last_run(&sysroot.state()) {
        Ok(run) => (run, None),
        Err(err) => (None, Some(format!("{err:#}"))),
    };
    Summary {
        policy,
        last_run,
        error: config_error.or(record_error),
    }
}

/// What an automatic run did.
#[derive(Debug)]
pub struct Run {
    /// The configuration read, as the host names it (`/etc/pkglayer/pkglayer.conf`).
    pub config: PathBuf,
    /// The policy it set.
    pub policy: Policy,
    /// The upgrade (or its check); `None` for `none`.
    pub upgrade: Option<UpgradeReport>,
    /// What was recorded; `None` for `none`, which records nothing.
    pub recorded: Option<LastRun>,
}

/// Runs the automatic update policy of the configuration at `config` (default: [`config_path`]),
/// with `options` for the upgrade (repos; cache only). A failure is recorded, then returned.
pub fn run(
    sysroot: &Sysroot,
    config: Option<&Path>,
    options: &operation::Options,
    progress: &dyn Progress,
) -> Result<Run> {
    let (path, config) = config_file(sysroot, config);
    let policy = read_policy(&path, &config)?;
    if policy == Policy::None {
        return Ok(Run {
            config,
            policy,
            upgrade: None,
            recorded: None,
        });
    }
    let options = operation::Options {
        dry_run: false,
        download_only: false,
        ..options.clone()
    };
    let result = operation::upgrade(sysroot, policy == Policy::Check, &options, progress);
    let (outcome, message) = match &result {
        Ok(report) => describe(policy, report),
        Err(err) => (Outcome::Failed, format!("{err:#}")),
    };
    let run = LastRun {
        timestamp: chrono::Utc::now().timestamp(),
        policy,
        outcome,
        message,
    };
    if let Err(err) = record(&sysroot.state(), &run) {
        tracing::warn!("could not record the automatic update: {err:#}");
    }
    Ok(Run {
        config,
        policy,
        upgrade: Some(result?),
        recorded: Some(run),
    })
}

/// The outcome of an upgrade (or its check) and the message that says what it found.
fn describe(policy: Policy, report: &UpgradeReport) -> (Outcome, String) {
    let base = &report.base;
    let name = |commit: &str, version: &Option<String>| match version {
        Some(version) => format!("{version} ({})", &commit[..commit.len().min(12)]),
        None => commit[..commit.len().min(12)].to_string(),
    };
    let update = if base.is_update() {
        format!(
            "base {} -> {}",
            name(&base.current, &base.current_version),
            name(&base.newest, &base.newest_version)
        )
    } else {
        format!(
            "newer layered packages on base {}",
            name(&base.current, &base.current_version)
        )
    };
    let deployed = report.transaction.as_ref().and_then(|t| match &t.outcome {
        Some(LayerOutcome::Deployed { deployment, .. }) => Some(deployment.clone()),
        _ => None,
    });
    match (policy, deployed) {
        (_, Some(deployment)) => (
            Outcome::Deployed,
            format!("{update}; deployment {deployment} boots next"),
        ),
        _ if !report.update_available() => (
            Outcome::NoUpdate,
            format!(
                "base {} is the newest",
                name(&base.current, &base.current_version)
            ),
        ),
        (Policy::Check, None) => (Outcome::UpdateAvailable, update),
        // A stage that found an update but deployed nothing (the layer came out the same).
        (_, None) => (Outcome::NoUpdate, format!("{update}: nothing to deploy")),
    }
}

/// `2026-11-30T07:00:00Z`, as `status` writes times.
fn format_time(timestamp: i64) -> String {
    chrono::DateTime::from_timestamp(timestamp, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| timestamp.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_of(text: &str) -> Result<Policy> {
        parse_config(text, Path::new("/etc/pkglayer/pkglayer.conf"))
    }

    #[test]
    fn the_policy_is_read_as_rpm_ostreed_conf_names_it() {
        assert_eq!(
            policy_of("[Daemon]\nAutomaticUpdatePolicy=stage\n").unwrap(),
            Policy::Stage
        );
        assert_eq!(
            policy_of("[Daemon]\nAutomaticUpdatePolicy=check\n").unwrap(),
            Policy::Check
        );
        assert_eq!(
            policy_of("[Daemon]\nAutomaticUpdatePolicy=none\n").unwrap(),
            Policy::None
        );
        assert_eq!(
            policy_of("[Daemon]\nAutomaticUpdatePolicy=off\n").unwrap(),
            Policy::None
        );
        assert_eq!(
            policy_of("[Daemon]\nAutomaticUpdatePolicy= Stage \n").unwrap(),
            Policy::Stage
        );
        // The shipped file (every line a comment) and an empty one mean none.
        let shipped = include_str!("../../../packaging/pkglayer.conf");
        assert_eq!(policy_of(shipped).unwrap(), Policy::None);
        assert_eq!(policy_of("").unwrap(), Policy::None);
        // Another group's key is not the policy.
        assert_eq!(
            policy_of("[Other]\nAutomaticUpdatePolicy=stage\n").unwrap(),
            Policy::None
        );
    }

    #[test]
    fn a_policy_it_does_not_know_is_an_error_naming_file_and_value() {
        let err = policy_of("[Daemon]\nAutomaticUpdatePolicy=apply\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/pkglayer/pkglayer.conf: unknown AutomaticUpdatePolicy=apply"
        );
        assert!(crate::error::hint_of(&err).unwrap().contains("none, check"));
        let err = policy_of("AutomaticUpdatePolicy=stage\n").unwrap_err();
        assert!(err.to_string().contains("not a valid key file"), "{err}");
    }

    #[test]
    fn a_missing_configuration_means_none() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("absent.conf");
        assert_eq!(read_policy(&absent, &absent).unwrap(), Policy::None);
    }

    #[test]
    fn a_record_survives_a_round_trip_and_replaces_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::new(dir.path().join("lib/pkglayer"));
        assert_eq!(last_run(&state).unwrap(), None);
        let failed = LastRun {
            timestamp: 1_796_022_000,
            policy: Policy::Stage,
            outcome: Outcome::Failed,
            message: "Pulling vendor:testos/x86_64: 404\n\tsecond line; with = signs".into(),
        };
        record(&state, &failed).unwrap();
        assert_eq!(last_run(&state).unwrap().as_ref(), Some(&failed));
        let text = std::fs::read_to_string(state.automatic_updates()).unwrap();
        assert!(text.contains("Time=2026-11-30T07:00:00Z"), "{text}");
        let checked = LastRun {
            outcome: Outcome::UpdateAvailable,
            policy: Policy::Check,
            message: "base 1 -> 2".into(),
            ..failed
        };
        record(&state, &checked).unwrap();
        assert_eq!(last_run(&state).unwrap(), Some(checked));
        // Only the record is in the folder: no temporary file left.
        assert_eq!(
            std::fs::read_dir(dir.path().join("lib/pkglayer"))
                .unwrap()
                .count(),
            1
        );
    }

    #[test]
    fn a_damaged_record_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::new(dir.path());
        std::fs::write(state.automatic_updates(), "[LastRun]\nOutcome=exploded\n").unwrap();
        let err = format!("{:#}", last_run(&state).unwrap_err());
        assert!(err.contains("automatic-update"), "{err}");
    }

    #[test]
    fn the_status_line_says_policy_and_last_run() {
        let run = LastRun {
            timestamp: 1_796_022_000,
            policy: Policy::Stage,
            outcome: Outcome::Deployed,
            message: "base 1 -> 2; deployment abc.0 boots next".into(),
        };
        let summary = |policy, last_run: Option<LastRun>| Summary {
            policy: Some(policy),
            last_run,
            error: None,
        };
        assert_eq!(summary(Policy::None, None).line(), None);
        assert_eq!(
            summary(Policy::Check, None).line().unwrap(),
            "AutomaticUpdates: check; no runs yet"
        );
        assert_eq!(
            summary(Policy::Stage, Some(run.clone())).line().unwrap(),
            "AutomaticUpdates: stage; last run 2026-11-30T07:00:00Z: deployed: \
             base 1 -> 2; deployment abc.0 boots next"
        );
        // Turned off since: the last run still shows, with the policy it ran.
        assert_eq!(
            summary(Policy::None, Some(run.clone())).line().unwrap(),
            "AutomaticUpdates: disabled; last run 2026-11-30T07:00:00Z: deployed (policy stage): \
             base 1 -> 2; deployment abc.0 boots next"
        );
        let failed = LastRun {
            outcome: Outcome::Failed,
            message: "Upgrading: no route to host\nmore".into(),
            ..run
        };
        assert_eq!(
            summary(Policy::Stage, Some(failed)).line().unwrap(),
            "AutomaticUpdates: stage; last run 2026-11-30T07:00:00Z: failed: Upgrading: no route to host more"
        );
        let broken = Summary {
            policy: None,
            last_run: None,
            error: Some("pkglayer.conf: unknown AutomaticUpdatePolicy=apply".into()),
        };
        assert_eq!(
            broken.line().unwrap(),
            "AutomaticUpdates: unknown (pkglayer.conf: unknown AutomaticUpdatePolicy=apply); no runs yet"
        );
    }

    #[test]
    fn the_json_form_uses_kebab_case_names() {
        let summary = Summary {
            policy: Some(Policy::Check),
            last_run: Some(LastRun {
                timestamp: 1,
                policy: Policy::Check,
                outcome: Outcome::UpdateAvailable,
                message: "m".into(),
            }),
            error: None,
        };
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["policy"], "check");
        assert_eq!(json["last-run"]["outcome"], "update-available");
        assert_eq!(json["last-run"]["timestamp"], 1);
        assert!(json.get("error").is_none());
    }
}
