//! Automatic updates end to end (`pkglayer automatic`, what pkglayer-automatic.timer starts): each
//! policy of `/etc/pkglayer/pkglayer.conf` on a test host whose vendor publishes a new base, the
//! record of the run, and `status` (text and JSON) showing it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use pkglayer_core::automatic::CONFIG_PATH;
use pkglayer_testkit::{TestPackage, base_packages, base_ref, require_root};
use serde_json::Value;
use support::host::RepoHost;
use support::{Pkglayer, Redactions, ok, said, stderr};

fn host() -> RepoHost {
    RepoHost::serving(vec![
        TestPackage::new("hello", "1.0-1").executable("/usr/bin/hello", "#!/bin/sh\necho hello\n"),
    ])
}

/// The configuration as the current (default) deployment's `/etc` holds it.
fn config_in_etc(h: &RepoHost) -> PathBuf {
    h.newest().join(CONFIG_PATH)
}

fn set_policy(path: &Path, policy: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        format!("# written by the test\n[Daemon]\nAutomaticUpdatePolicy={policy}\n"),
    )
    .unwrap();
}

/// The vendor publishes base 2; returns its commit.
fn publish_v2(h: &RepoHost) -> String {
    h.host
        .vendor
        .publish(&base_ref(), "2", &base_packages("2"))
        .unwrap()
}

/// `pkglayer automatic ARGS…` with the test repo.
fn automatic(h: &RepoHost, args: &[&str]) -> Output {
    Pkglayer::new(&h.host.sysroot.path)
        .arg("automatic")
        .args(args)
        .reposdir(&h.reposdir)
        .output()
}

/// Redactions naming base v1 and `v2`, whole and by the 12-character prefix messages use.
fn redactions(h: &RepoHost, v2: &str) -> Redactions {
    Redactions::new()
        .name(&h.host.base_v1, "[BASE_V1]")
        .name(v2, "[BASE_V2]")
        .name(&h.host.base_v1[..12], "[BASE_V1_PREFIX]")
        .name(&v2[..12], "[BASE_V2_PREFIX]")
}

fn status_text(h: &RepoHost) -> String {
    ok(&h.pkglayer(&["status"]))
}

fn status_json(h: &RepoHost) -> Value {
    serde_json::from_str(&ok(&h.pkglayer(&["status", "--json"]))).unwrap()
}

/// The `AutomaticUpdates:` line of `status`.
fn status_line(h: &RepoHost) -> Option<String> {
    status_text(h)
        .lines()
        .find(|line| line.starts_with("AutomaticUpdates:"))
        .map(str::to_string)
}

fn record_path(h: &RepoHost) -> PathBuf {
    support::state(&h.host.sysroot.path).automatic_updates()
}

/// `last run 2026-11-30T07:00:00Z: ` at the start of `rest`: a time in status's format.
fn assert_last_run_time(rest: &str) -> &str {
    let rest = rest
        .strip_prefix("last run ")
        .unwrap_or_else(|| panic!("{rest}"));
    let (time, rest) = rest.split_at(20);
    assert!(
        chrono::DateTime::parse_from_rfc3339(time).is_ok(),
        "{time:?} is not a time"
    );
    rest.strip_prefix(": ").unwrap_or_else(|| panic!("{rest}"))
}

#[test]
fn policy_none_changes_nothing_and_records_nothing() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "hello"]));
    publish_v2(&h);
    let before = h.snapshot();

    // No configuration at all is none, and so is an explicit none.
    let out = ok(&automatic(&h, &[]));
    assert!(out.contains("Automatic updates are off"), "{out}");
    set_policy(&config_in_etc(&h), "none");
    let out = ok(&automatic(&h, &[]));
    assert!(out.contains("AutomaticUpdatePolicy=none"), "{out}");

    assert_eq!(h.snapshot(), before, "none deployed or fetched something");
    assert!(!record_path(&h).exists(), "none recorded a run");
    // Off and never run: status has no line for it, JSON says so.
    assert_eq!(status_line(&h), None);
    let json = status_json(&h);
    assert_eq!(json["automatic-updates"]["policy"], "none");
    assert_eq!(json["automatic-updates"]["last-run"], Value::Null);
}

#[test]
fn policy_check_reports_an_update_without_deploying_it() {
    require_root!();
    let h = host();
    // The policy from another file (--config), e.g. for a test or an image build.
    let config = h.host.dir().join("pkglayer.conf");
    set_policy(&config, "check");
    let config = config.to_str().unwrap();

    // Nothing newer yet.
    let out = ok(&automatic(&h, &["--config", config]));
    assert!(out.contains("Automatic update (check): no-update"), "{out}");
    let json = status_json(&h);
    assert_eq!(
        json["automatic-updates"]["last-run"]["outcome"],
        "no-update"
    );

    let v2 = publish_v2(&h);
    let before = h.snapshot();
    let out = ok(&automatic(&h, &["--config", config]));
    assert!(
        out.contains("Automatic update (check): update-available"),
        "{out}"
    );
    assert!(
        out.contains(&v2),
        "the base line names the new commit: {out}"
    );
    insta::with_settings!({filters => redactions(&h, &v2).filters()}, {
        insta::assert_snapshot!("automatic_check_update_available", out);
    });
    assert_eq!(h.snapshot().0, before.0, "check deployed something");
    assert_eq!(h.deployments(), std::slice::from_ref(&h.host.base_v1));

    // status reads the policy from the deployment's /etc (none there), and shows the last run.
    let line = status_line(&h).expect("a run is shown even with the policy off");
    let rest = line
        .strip_prefix("AutomaticUpdates: disabled; ")
        .unwrap_or_else(|| panic!("{line}"));
    let rest = assert_last_run_time(rest);
    assert!(
        rest.starts_with("update available (policy check): base 1 ("),
        "{line}"
    );
    assert!(rest.contains(&format!("-> 2 ({})", &v2[..12])), "{line}");

    let run = &status_json(&h)["automatic-updates"]["last-run"];
    assert_eq!(run["policy"], "check");
    assert_eq!(run["outcome"], "update-available");
    let now = chrono::Utc::now().timestamp();
    let timestamp = run["timestamp"].as_i64().unwrap();
    assert!((now - 600..=now).contains(&timestamp), "{timestamp}");
    assert!(run["message"].as_str().unwrap().contains("-> 2"), "{run}");
}

#[test]
fn policy_stage_deploys_the_update_for_the_next_boot() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "hello"]));
    set_policy(&config_in_etc(&h), "stage");
    assert_eq!(
        status_line(&h).as_deref(),
        Some("AutomaticUpdates: stage; no runs yet")
    );
    let v2 = publish_v2(&h);
    let layered_v1 = h.deployments()[0].clone();

    let out = ok(&automatic(&h, &[]));
    assert!(out.contains("Automatic update (stage): deployed"), "{out}");
    insta::with_settings!({filters => redactions(&h, &v2).filters()}, {
        insta::assert_snapshot!("automatic_stage_deployed", out);
    });
    let deployments = h.deployments();
    assert_eq!(deployments.len(), 2, "{deployments:?}");
    assert_eq!(
        deployments[1], layered_v1,
        "the previous one is the rollback"
    );
    assert_eq!(
        h.host.sysroot.rpm_q(&h.newest(), "testos-release").unwrap(),
        "testos-release-2-2.testos.noarch"
    );
    assert!(h.host.sysroot.rpm_q(&h.newest(), "hello").is_some());
    let json = status_json(&h);
    let first = &json["deployments"][0];
    assert_eq!(first["base-checksum"], v2.as_str());
    let run = &json["automatic-updates"]["last-run"];
    assert_eq!(run["outcome"], "deployed");
    assert_eq!(json["automatic-updates"]["policy"], "stage");
    // The new deployment carries the configuration over (/etc merge): status still reads stage.
    let line = status_line(&h).unwrap();
    println!("{line}");
    let rest = line
        .strip_prefix("AutomaticUpdates: stage; ")
        .unwrap_or_else(|| panic!("{line}"));
    let rest = assert_last_run_time(rest);
    assert!(rest.starts_with("deployed: base 1 ("), "{line}");
    assert!(rest.ends_with("boots next"), "{line}");
    assert!(
        rest.contains(first["id"].as_str().unwrap().trim_start_matches("testos-")),
        "names the deployment: {line}"
    );

    // Run again: nothing newer, nothing deployed.
    let out = ok(&automatic(&h, &[]));
    assert!(out.contains("Automatic update (stage): no-update"), "{out}");
    assert_eq!(h.deployments(), deployments);
    h.fsck();
}

#[test]
fn a_failed_run_is_recorded_and_shown() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "hello"]));
    set_policy(&config_in_etc(&h), "stage");
    publish_v2(&h);
    let before = h.snapshot();

    // The repo is gone (nothing listens there): the upgrade cannot sync its metadata.
    let broken = h.host.dir().join("broken.repos.d");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("test.repo"),
        "[test]\nbaseurl=http://127.0.0.1:9/repo/\ngpgcheck=0\n",
    )
    .unwrap();
    let output = Pkglayer::new(&h.host.sysroot.path)
        .args(["automatic", "--reposdir"])
        .arg(&broken)
        .output();
    assert!(!output.status.success(), "{}", said(&output));
    let err = stderr(&output);
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(h.snapshot().0, before.0, "a failed run deployed something");

    let run = &status_json(&h)["automatic-updates"]["last-run"];
    assert_eq!(run["outcome"], "failed");
    assert_eq!(run["policy"], "stage");
    let message = run["message"].as_str().unwrap();
    assert!(
        message.contains("test"),
        "the error names the repo: {message}"
    );
    assert!(
        err.contains(message.lines().next().unwrap()),
        "{err}\n{message}"
    );
    let line = status_line(&h).unwrap();
    println!("{line}");
    let rest = assert_last_run_time(line.strip_prefix("AutomaticUpdates: stage; ").unwrap());
    assert!(
        rest.starts_with("failed: Planning the transaction: cannot fetch metadata of repo test: "),
        "{line}"
    );
    assert!(
        rest.contains("127.0.0.1:9"),
        "the whole message, on one line: {line}"
    );

    // The next run that works replaces the record.
    ok(&automatic(&h, &[]));
    let run = &status_json(&h)["automatic-updates"]["last-run"];
    assert_eq!(run["outcome"], "deployed");
}

#[test]
fn a_policy_it_does_not_know_fails_and_status_says_why() {
    require_root!();
    let h = host();
    set_policy(&config_in_etc(&h), "apply");
    let output = automatic(&h, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", said(&output));
    let err = stderr(&output);
    assert!(
        err.contains("error: /etc/pkglayer/pkglayer.conf: unknown AutomaticUpdatePolicy=apply"),
        "{err}"
    );
    assert!(err.contains("hint: the policies are none, check"), "{err}");
    assert!(!record_path(&h).exists());
    let line = status_line(&h).unwrap();
    println!("{line}");
    assert_eq!(
        line,
        "AutomaticUpdates: unknown (/etc/pkglayer/pkglayer.conf: unknown \
         AutomaticUpdatePolicy=apply); no runs yet"
    );
    let json = status_json(&h);
    assert_eq!(json["automatic-updates"]["policy"], Value::Null);
    assert!(
        json["automatic-updates"]["error"]
            .as_str()
            .unwrap()
            .contains("apply")
    );
}
