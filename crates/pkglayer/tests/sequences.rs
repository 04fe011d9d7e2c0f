//! A host's life in short sequences: operations one after another and at the same time, the vendor
//! and the repo changing underneath. Each test is one way a host used to get stuck or quietly wrong.

use std::io::{BufRead, BufReader};
use std::process::Child;

mod support;

use pkglayer_core::layout::refs;
use pkglayer_testkit::{
    TestPackage, base_packages, base_ref, create_repo, host_arch, require_root,
};
use serde_json::Value;
use support::host::RepoHost;
use support::{Pkglayer, Redactions, failure, ok, stderr};

/// hello and the library it requires, a package with an /etc file, and a package on its own.
fn packages() -> Vec<TestPackage> {
    vec![
        TestPackage::new("hello", "1.0-1")
            .requires("libhello")
            .executable("/usr/bin/hello", "#!/bin/sh\necho hello\n"),
        TestPackage::new("libhello", "1.0-1").file("/usr/lib64/libhello.so", "libhello 1"),
        TestPackage::new("etcpkg", "1.0-1").file("/etc/etcpkg.conf", "x=1\n"),
        TestPackage::new("htop", "3.2-1").executable("/usr/bin/htop", "#!/bin/sh\necho htop\n"),
    ]
}

fn host() -> RepoHost {
    RepoHost::serving(packages())
}

/// The `[packages] requested=` line of deployment `index`'s origin.
fn requested(h: &RepoHost, index: usize) -> String {
    h.host
        .sysroot
        .origin(index)
        .unwrap()
        .lines()
        .find(|line| line.starts_with("requested="))
        .unwrap_or("requested=")
        .to_string()
}

/// `rpm -q NAME` in the default deployment: the NEVRA, or `None` when not installed.
fn rpm_q(h: &RepoHost, name: &str) -> Option<String> {
    h.host.sysroot.rpm_q(&h.newest(), name)
}

/// Publishes base `version` made of the standard base packages plus `extra`; returns its commit.
fn publish_base(h: &RepoHost, version: &str, extra: Vec<TestPackage>) -> String {
    let mut packages = base_packages(version);
    packages.extend(extra);
    h.host
        .vendor
        .publish(&base_ref(), version, &packages)
        .unwrap()
}

#[test]
fn the_base_of_every_deployment_stays_in_the_repo() {
    require_root!();
    let h = host();
    let v2 = publish_base(&h, "2", Vec::new());
    // `upgrade --check` fetches only the commit object: no update is downloaded yet.
    ok(&h.pkglayer(&["upgrade", "--check"]));
    let status: Value = serde_json::from_str(&ok(&h.pkglayer(&["status", "--json"]))).unwrap();
    assert_eq!(status["cached-update"], Value::Null);
    // The vendor's ref moves to v2; the deployments still layer on v1.
    ok(&h.pkglayer(&["upgrade", "--download-only"]));
    let status: Value = serde_json::from_str(&ok(&h.pkglayer(&["status", "--json"]))).unwrap();
    let update = &status["cached-update"];
    assert_eq!(update["checksum"], v2.as_str());
    assert_eq!(update["version"], "2");
    assert!(
        update["rpm-diff"]["changed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "testos-release" && c["to"] == "2-2.testos.noarch"),
        "{update}"
    );
    let text = ok(&h.pkglayer(&["status"]));
    assert!(
        text.contains("AvailableUpdate (downloaded, not deployed; `pkglayer upgrade` deploys it):\n             Version: 2 ("),
        "{text}"
    );
    ok(&h.pkglayer(&["install", "hello"]));
    ok(&h.pkglayer(&["install", "etcpkg"]));
    assert!(
        h.host.sysroot.has_commit(&h.host.base_v1),
        "base v1 was pruned"
    );
    let refs = h.host.sysroot.ostree(&["refs"]).unwrap();
    assert!(refs.contains(&refs::base(&h.host.base_v1)), "{refs}");
    // Every operation still works from here.
    ok(&h.pkglayer(&["uninstall", "etcpkg"]));
    ok(&h.pkglayer(&["upgrade"]));
    assert_eq!(
        rpm_q(&h, "testos-release").unwrap(),
        "testos-release-2-2.testos.noarch"
    );
    let status: Value = serde_json::from_str(&ok(&h.pkglayer(&["status", "--json"]))).unwrap();
    assert_eq!(status["cached-update"], Value::Null, "deployed now");
    assert_eq!(requested(&h, 0), "requested=hello;");
    h.fsck();

    // Once no deployment layers on v1 any more, its pin goes.
    ok(&h.pkglayer(&["cleanup", "--rollback"]));
    let refs = h.host.sysroot.ostree(&["refs"]).unwrap();
    assert!(!refs.contains(&refs::base(&h.host.base_v1)), "{refs}");
    assert!(
        !h.host.sysroot.has_commit(&h.host.base_v1),
        "released and pruned"
    );
}

/// Starts pkglayer on the host and returns once it says it waits for the lock.
fn start_waiting(h: &RepoHost, args: &[&str]) -> Child {
    let mut child = h.command(args).spawn();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("pkglayer ended before waiting for the lock: {seen}");
        }
        seen.push_str(&line);
        if line.contains("waiting for the sysroot lock") {
            break;
        }
    }
    child
}

#[test]
fn two_operations_at_once_both_take_effect() {
    require_root!();
    let h = host();
    let holder = h.host.sysroot.hold_lock();
    let first = start_waiting(&h, &["install", "hello"]);
    let second = start_waiting(&h, &["install", "etcpkg"]);
    drop(holder);
    for child in [first, second] {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
    }
    assert_eq!(requested(&h, 0), "requested=etcpkg;hello;");
    assert!(rpm_q(&h, "hello").is_some() && rpm_q(&h, "etcpkg").is_some());
    // Each built on the other: the rollback has one of the two.
    let rollback = requested(&h, 1);
    assert!(
        rollback == "requested=hello;" || rollback == "requested=etcpkg;",
        "{rollback}"
    );
}

#[test]
fn a_layered_package_the_vendor_adds_to_the_base_becomes_inactive_and_back() {
    require_root!();
    let h = host();
    let arch = host_arch();
    ok(&h.pkglayer(&["install", "htop"]));
    assert_eq!(rpm_q(&h, "htop").unwrap(), format!("htop-3.2-1.{arch}"));

    // The vendor's next base ships htop itself.
    let base_htop =
        TestPackage::new("htop", "3.3-1.testos").executable("/usr/bin/htop", "#!/bin/sh\nbase\n");
    let v2 = publish_base(&h, "2", vec![base_htop]);
    ok(&h.pkglayer(&["upgrade"]));
    assert_eq!(requested(&h, 0), "requested=htop;", "the request is kept");
    assert_eq!(
        rpm_q(&h, "htop").unwrap(),
        format!("htop-3.3-1.testos.{arch}")
    );
    let status = ok(&h.pkglayer(&["status"]));
    assert!(status.contains("InactiveRequests: htop"), "{status}");
    let redactions = Redactions::new()
        .name(&h.host.base_v1, "[BASE_V1]")
        .name(&v2, "[BASE_V2]");
    insta::with_settings!({filters => redactions.filters()}, {
        insta::assert_snapshot!("status_inactive_request", status);
    });
    let json: Value = serde_json::from_str(&ok(&h.pkglayer(&["status", "--json"]))).unwrap();
    assert_eq!(
        json["deployments"][0]["inactive-requests"],
        serde_json::json!(["htop"])
    );
    // Other operations keep working with the inactive request.
    ok(&h.pkglayer(&["install", "hello"]));
    assert_eq!(requested(&h, 0), "requested=hello;htop;");

    // A later base drops it again: the request is active again, from the repo.
    publish_base(&h, "3", Vec::new());
    ok(&h.pkglayer(&["upgrade"]));
    assert_eq!(rpm_q(&h, "htop").unwrap(), format!("htop-3.2-1.{arch}"));
    let json: Value = serde_json::from_str(&ok(&h.pkglayer(&["status", "--json"]))).unwrap();
    assert_eq!(
        json["deployments"][0]["inactive-requests"],
        serde_json::json!([])
    );
    ok(&h.pkglayer(&["uninstall", "htop"]));
    assert!(rpm_q(&h, "htop").is_none());
}

#[test]
fn allow_inactive_requests_survive_later_operations() {
    require_root!();
    let h = host();
    // busybox is in the base.
    ok(&h.pkglayer(&["install", "--allow-inactive", "busybox"]));
    assert_eq!(requested(&h, 0), "requested=busybox;");
    ok(&h.pkglayer(&["install", "hello"]));
    ok(&h.pkglayer(&["upgrade"]));
    ok(&h.pkglayer(&["uninstall", "hello"]));
    assert_eq!(requested(&h, 0), "requested=busybox;");
    ok(&h.pkglayer(&["uninstall", "busybox"]));
    assert_eq!(requested(&h, 0), "requested=");
}

#[test]
fn cache_only_never_opens_a_connection() {
    require_root!();
    let h = host();
    let arch = host_arch();
    ok(&h.pkglayer(&["refresh-md"]));
    let requests = h.server.requests().len();
    let before = h.snapshot();
    // The dry run predicts it.
    let err = failure(&h.pkglayer(&["install", "--dry-run", "-C", "hello"]));
    assert!(
        err.contains("--cache-only: not in the package cache"),
        "{err}"
    );
    let err = failure(&h.pkglayer(&["install", "-C", "hello"]));
    assert!(
        err.contains(&format!(
            "--cache-only: not in the package cache: hello-1.0-1.{arch}, libhello-1.0-1.{arch}"
        )),
        "{err}"
    );
    assert!(
        err.contains("hint: fetch them first with --download-only"),
        "{err}"
    );
    insta::with_settings!({filters => Redactions::new().filters()}, {
        insta::assert_snapshot!("cache_only_refused", err);
    });
    assert_eq!(h.server.requests().len(), requests, "no request was made");
    assert_eq!(h.snapshot(), before);

    ok(&h.pkglayer(&["install", "--download-only", "hello"]));
    let requests = h.server.requests().len();
    ok(&h.pkglayer(&["install", "-C", "hello"]));
    assert_eq!(h.server.requests().len(), requests);
    assert!(rpm_q(&h, "hello").is_some());
}

#[test]
fn a_dry_run_predicts_the_real_run() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "hello"]));
    // libhello is layered as a dependency; requesting it changes the request, so a deployment.
    let dry = ok(&h.pkglayer(&["install", "--dry-run", "libhello"]));
    assert!(dry.ends_with("Dry run: nothing was changed.\n"), "{dry}");
    let deployments = h.deployments();
    let real = ok(&h.pkglayer(&["install", "libhello"]));
    assert!(real.contains("Deployed "), "{real}");
    assert_ne!(h.deployments(), deployments);

    // The same request again with --idempotent: both say no change.
    let dry = ok(&h.pkglayer(&["install", "--dry-run", "--idempotent", "libhello"]));
    assert!(dry.contains("No change."), "{dry}");
    let real = ok(&h.pkglayer(&["install", "--idempotent", "libhello"]));
    assert!(real.contains("No change."), "{real}");

    // A dry run with a local RPM writes nothing: no import, no ref, no deployment.
    let local = TestPackage::new("localtool", "0.9-1").file("/usr/share/localtool", "x");
    let rpm = local.write_to(h.host.dir()).unwrap();
    let before = h.snapshot();
    let dry = ok(&h.pkglayer(&["install", "--dry-run", rpm.to_str().unwrap()]));
    assert!(dry.contains("\nInstalling:\n localtool  0.9-1  "), "{dry}");
    assert_eq!(
        h.snapshot(),
        before,
        "refs, deployments and origins unchanged"
    );
}

#[test]
fn local_packages_are_their_digest_not_their_nevra() {
    require_root!();
    let h = host();
    let build = |content: &str, dir: &str| {
        let dir = h.host.dir().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        TestPackage::new("foo", "1.0-1")
            .arch("noarch")
            .file("/usr/share/foo", content)
            .write_to(&dir)
            .unwrap()
    };
    let (a, b) = (build("build A\n", "a"), build("build B\n", "b"));
    ok(&h.pkglayer(&["install", a.to_str().unwrap()]));
    // Another build of the same NEVRA replaces the request.
    ok(&h.pkglayer(&["install", "--idempotent", b.to_str().unwrap()]));
    assert_eq!(
        std::fs::read_to_string(h.newest().join("usr/share/foo")).unwrap(),
        "build B\n"
    );
    // Back to the deployment that requested build A, and layer on it: build A it stays.
    ok(&h.pkglayer(&["rollback"]));
    ok(&h.pkglayer(&["install", "hello"]));
    assert_eq!(
        std::fs::read_to_string(h.newest().join("usr/share/foo")).unwrap(),
        "build A\n"
    );
}

#[test]
fn upgrade_check_exit_status_and_json_stdout() {
    require_root!();
    let h = host();
    let check = h.pkglayer(&["upgrade", "--check"]);
    assert_eq!(check.status.code(), Some(77), "{check:?}");
    let json = h.pkglayer(&["upgrade", "--check", "--json"]);
    assert_eq!(json.status.code(), Some(77));
    let document: Value =
        serde_json::from_slice(&json.stdout).expect("stdout is one JSON document");
    assert_eq!(document["update-available"], false);

    let v2 = publish_base(&h, "2", Vec::new());
    let check = h.pkglayer(&["upgrade", "--check", "--json"]);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let document: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(document["update-available"], true);
    assert_eq!(document["newest-base-checksum"], v2.as_str());

    let upgrade = h.pkglayer(&["upgrade", "--json"]);
    assert!(upgrade.status.success(), "{upgrade:?}");
    let document: Value = serde_json::from_slice(&upgrade.stdout).unwrap();
    assert_eq!(document["transaction"]["outcome"]["kind"], "deployed");
    assert_eq!(h.deployments()[0], v2);
}

#[test]
fn upgrade_dry_run_fetches_only_the_new_base_commit() {
    require_root!();
    let h = host();
    let v2 = publish_base(&h, "2", Vec::new());
    let out = ok(&h.pkglayer(&["upgrade", "--dry-run"]));
    assert!(
        out.contains(&format!("Base vendor:{}: 1 -> 2", base_ref())),
        "{out}"
    );
    assert_eq!(h.deployments(), vec![h.host.base_v1.clone()]);
    // The commit object is here; its tree is not.
    let tree = h.host.sysroot.ostree(&["ls", &v2, "/usr"]);
    assert!(tree.is_err(), "the new base was pulled whole");
    ok(&h.pkglayer(&["upgrade"]));
    assert_eq!(h.deployments()[0], v2);
}

#[test]
fn a_skipped_script_left_over_from_an_uninstall_changes_nothing() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "--skip-scripts", "hello", "hello"]));
    ok(&h.pkglayer(&["uninstall", "hello"]));
    assert!(
        h.host
            .sysroot
            .origin(0)
            .unwrap()
            .contains("skip-scripts=hello;")
    );
    let deployments = h.deployments();
    assert_eq!(h.pkglayer(&["upgrade", "--check"]).status.code(), Some(77));
    let out = ok(&h.pkglayer(&["upgrade"]));
    assert!(out.contains("No change."), "{out}");
    assert_eq!(h.deployments(), deployments);
}

#[test]
fn a_closed_stdout_ends_quietly() {
    require_root!();
    let h = host();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = Pkglayer::new(&h.host.sysroot.path)
        .args(["status", "--json"])
        .stdout(writer)
        .output();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stderr(&output), "");
}

#[test]
fn upgrade_never_goes_back() {
    require_root!();
    let h = host();
    // Commit times have a one-second grain.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let v2 = publish_base(&h, "2", Vec::new());
    ok(&h.pkglayer(&["upgrade"]));
    assert_eq!(h.deployments()[0], v2);

    // The vendor's ref goes back to v1 (a replayed or rolled-back ref).
    let head = h.host.vendor.repo().join("refs/heads").join(base_ref());
    std::fs::write(&head, format!("{}\n", h.host.base_v1)).unwrap();
    let before = h.snapshot();
    let err = failure(&h.pkglayer(&["upgrade"]));
    assert!(
        err.contains("older than the deployed base 2"),
        "error names both versions: {err}"
    );
    assert_eq!(h.deployments(), before.0);
    assert_eq!(h.snapshot().1, before.1);
}

#[test]
fn an_unconfigured_host_does_not_upgrade() {
    require_root!();
    let h = host();
    let origin = format!("{}.origin", h.newest().display());
    let text = std::fs::read_to_string(&origin).unwrap().replace(
        "[origin]\n",
        "[origin]\nunconfigured-state=This system is not registered to Red Hat Subscription Management.\n",
    );
    std::fs::write(&origin, text).unwrap();
    publish_base(&h, "2", Vec::new());
    let err = failure(&h.pkglayer(&["upgrade"]));
    assert!(
        err.contains("error: This system is not registered to Red Hat Subscription Management."),
        "{err}"
    );
    assert_eq!(h.deployments(), vec![h.host.base_v1.clone()]);
    // Layering is not an upgrade: it still works, and keeps the state.
    ok(&h.pkglayer(&["install", "hello"]));
    assert!(
        h.host
            .sysroot
            .origin(0)
            .unwrap()
            .contains("unconfigured-state=")
    );
}

#[test]
fn a_local_package_is_uninstalled_by_name_or_nevra_while_a_repo_has_it() {
    require_root!();
    let h = host();
    let arch = host_arch();
    // A local build of libhello-1.0-1, the NEVRA the repo has too, with other content.
    let local = TestPackage::new("libhello", "1.0-1")
        .file("/usr/lib64/libhello.so", "local libhello")
        .write_to(h.host.dir())
        .unwrap();
    let library = || std::fs::read_to_string(h.newest().join("usr/lib64/libhello.so")).unwrap();
    for spec in [format!("libhello-1.0-1.{arch}"), "libhello".to_string()] {
        ok(&h.pkglayer(&["install", "--idempotent", local.to_str().unwrap()]));
        // hello needs libhello: the local build satisfies it.
        ok(&h.pkglayer(&["install", "--idempotent", "hello"]));
        assert_eq!(library(), "local libhello", "{spec}");

        // Without the local request, hello still needs libhello: now the repo's build.
        let out = ok(&h.pkglayer(&["uninstall", &spec]));
        assert!(!out.contains("No change."), "{spec}: {out}");
        assert!(
            !h.host
                .sysroot
                .origin(0)
                .unwrap()
                .contains("requested-local="),
            "{spec}"
        );
        assert_eq!(library(), "libhello 1", "{spec}");
    }
}

#[test]
fn a_layered_package_another_obsoletes_is_replaced_as_dnf_does() {
    require_root!();
    let h = host();
    let arch = host_arch();
    ok(&h.pkglayer(&["install", "htop"]));
    // The repo publishes btop, which obsoletes htop and provides it (a rename).
    let mut renamed = packages();
    renamed.push(
        TestPackage::new("btop", "1.0-1")
            .obsoletes("htop")
            .provides("htop")
            .executable("/usr/bin/btop", "#!/bin/sh\necho btop\n"),
    );
    create_repo(&h.host.dir().join("www/repo"), &renamed, "gz").unwrap();
    let out = ok(&h.pkglayer(&["upgrade"]));
    assert!(
        out.contains(&format!(
            "Request htop replaced by btop: btop-1.0-1.{arch} obsoletes it."
        )),
        "{out}"
    );
    let redactions = Redactions::new().name(&h.deployments()[0], "[LAYERED]");
    insta::with_settings!({filters => redactions.filters()}, {
        insta::assert_snapshot!("upgrade_replaces_an_obsoleted_request", out);
    });
    assert_eq!(requested(&h, 0), "requested=btop;");
    assert!(rpm_q(&h, "htop").is_none());
    assert_eq!(rpm_q(&h, "btop").unwrap(), format!("btop-1.0-1.{arch}"));
    ok(&h.pkglayer(&["uninstall", "btop"]));
    assert!(rpm_q(&h, "btop").is_none());
}

#[test]
fn repo_changes_between_operations_are_followed() {
    require_root!();
    let h = host();
    let arch = host_arch();
    ok(&h.pkglayer(&["install", "hello"]));
    // The repo publishes a newer hello and drops etcpkg.
    let mut newer: Vec<TestPackage> = packages()
        .into_iter()
        .filter(|p| p.nevra() != format!("hello-1.0-1.{arch}") && !p.nevra().starts_with("etcpkg"))
        .collect();
    newer.push(
        TestPackage::new("hello", "1.1-1")
            .requires("libhello")
            .executable("/usr/bin/hello", "#!/bin/sh\necho hello 1.1\n"),
    );
    let served = h.host.dir().join("www/repo");
    std::fs::remove_dir_all(&served).unwrap();
    create_repo(&served, &newer, "gz").unwrap();
    ok(&h.pkglayer(&["upgrade"]));
    assert_eq!(rpm_q(&h, "hello").unwrap(), format!("hello-1.1-1.{arch}"));
    let err = failure(&h.pkglayer(&["install", "etcpkg"]));
    assert!(err.contains("etcpkg"), "{err}");
}

#[test]
fn the_vendors_end_of_life_notice_shows_on_layered_deployments() {
    require_root!();
    let h = host();
    let notice = "TestOS 2 is no longer supported; rebase to TestOS 3";
    h.host
        .vendor
        .publish_with_metadata(
            &base_ref(),
            "2",
            &base_packages("2"),
            &[("ostree.endoflife", notice)],
        )
        .unwrap();
    ok(&h.pkglayer(&["upgrade"]));
    ok(&h.pkglayer(&["install", "hello"]));
    let text = ok(&h.pkglayer(&["status"]));
    assert!(
        text.contains(&format!("           EndOfLife: {notice}\n")),
        "{text}"
    );
    let json: Value = serde_json::from_str(&ok(&h.pkglayer(&["status", "--json"]))).unwrap();
    let first = &json["deployments"][0];
    assert_eq!(first["end-of-life"], notice);
    assert_eq!(first["base-commit-meta"]["ostree.endoflife"], notice);
    // The layered commit repeats it, as it repeats the version.
    assert_eq!(first["layered-commit-meta"]["ostree.endoflife"], notice);
    assert_eq!(first["layered-commit-meta"]["ostree.bootable"], true);
}
