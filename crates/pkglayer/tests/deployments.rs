//! The deployment commands (status, rollback, cleanup, db list) on test-kit sysroots, checked against
//! the real tools: `ostree admin status`, `rpm -qa`, boot loader entries and origin files.

mod support;

use pkglayer_testkit::{TestHost, base_packages, base_ref, require_root};
use serde_json::Value;
use support::{Pkglayer, Redactions, failure, ok, pkglayer, stderr};

/// A host with base v1 deployed, then v2 deployed by `ostree admin upgrade`: [v2 (default), v1].
fn host_with_two_deployments() -> (TestHost, String) {
    let host = TestHost::new().unwrap();
    let v2 = host.upgrade_base("2").unwrap();
    (host, v2)
}

#[test]
fn status_json_agrees_with_ostree_admin_status() {
    require_root!();
    let (host, v2) = host_with_two_deployments();
    let json: Value =
        serde_json::from_str(&ok(&pkglayer(&host.sysroot.path, &["status", "--json"]))).unwrap();
    let ours = json["deployments"].as_array().unwrap();
    let theirs = host.sysroot.admin_status().unwrap();

    assert_eq!(ours.len(), theirs.len());
    for (ours, theirs) in ours.iter().zip(&theirs) {
        assert_eq!(ours["checksum"], theirs.checksum.as_str());
        assert_eq!(ours["serial"], theirs.serial);
        assert_eq!(ours["osname"], theirs.osname.as_str());
        assert_eq!(ours["version"], theirs.version.as_deref().unwrap());
        assert_eq!(ours["origin"], theirs.refspec.as_deref().unwrap());
        assert_eq!(ours["booted"], false);
        assert_eq!(
            ours["id"],
            format!("testos-{}.{}", theirs.checksum, theirs.serial).as_str()
        );
    }
    let (first, second) = (&ours[0], &ours[1]);
    assert_eq!(first["checksum"], v2.as_str());
    assert_eq!(second["checksum"], host.base_v1.as_str());
    assert_eq!(first["rollback"], false);
    assert_eq!(second["rollback"], true);
    assert_eq!(first["origin"], format!("vendor:{}", base_ref()).as_str());
    assert_eq!(first["requested-packages"], serde_json::json!([]));
    assert_eq!(first["requested-local-packages"], serde_json::json!([]));
    assert_eq!(first["pinned"], false);
    assert!(first.get("base-checksum").is_none(), "nothing is layered");
    assert!(first["timestamp"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(json["transaction"], Value::Null);
}

#[test]
fn status_text_shows_each_deployment() {
    require_root!();
    let (host, v2) = host_with_two_deployments();
    let text = ok(&pkglayer(&host.sysroot.path, &["status"]));
    // A snapshot ignores trailing blank lines: each block, the last too, ends with one.
    assert!(text.ends_with("\n\n"), "{text:?}");
    let redactions = Redactions::new()
        .name(&v2, "[BASE_V2]")
        .name(&host.base_v1, "[BASE_V1]");
    insta::with_settings!({filters => redactions.filters()}, {
        insta::assert_snapshot!("status_two_deployments", text);
    });
}

#[test]
fn rollback_swaps_the_default_and_keeps_kernel_arguments() {
    require_root!();
    let (host, v2) = host_with_two_deployments();
    let output = pkglayer(&host.sysroot.path, &["rollback"]);
    let message = ok(&output);
    assert!(message.contains(&host.base_v1), "{message}");

    let after = host.sysroot.admin_status().unwrap();
    let order: Vec<&str> = after.iter().map(|e| e.checksum.as_str()).collect();
    assert_eq!(order, [host.base_v1.as_str(), v2.as_str()]);
    for options in host.sysroot.boot_options().unwrap() {
        assert!(
            options.contains("root=LABEL=testos-root console=ttyS0"),
            "{options}"
        );
    }

    // And back again.
    ok(&pkglayer(&host.sysroot.path, &["rollback"]));
    let order: Vec<String> = host
        .sysroot
        .admin_status()
        .unwrap()
        .into_iter()
        .map(|e| e.checksum)
        .collect();
    assert_eq!(order, [v2.clone(), host.base_v1.clone()]);
}

#[test]
fn rollback_without_a_second_deployment_is_refused() {
    require_root!();
    let host = TestHost::new().unwrap();
    let output = pkglayer(&host.sysroot.path, &["rollback"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("error: Rolling back: stateroot testos has no deployment to roll back to"),
        "{err}"
    );
    assert!(err.contains("hint: "), "{err}");
    insta::with_settings!({filters => Redactions::new().filters()}, {
        insta::assert_snapshot!("rollback_refused", err);
    });
    assert_eq!(host.sysroot.admin_status().unwrap().len(), 1);
}

#[test]
fn cleanup_rollback_removes_one_deployment() {
    require_root!();
    let (host, v2) = host_with_two_deployments();
    let out = ok(&pkglayer(&host.sysroot.path, &["cleanup", "--rollback"]));
    assert_eq!(out, format!("Removed deployment {}.0\n", host.base_v1));

    let after = host.sysroot.admin_status().unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].checksum, v2);
    let gone = host
        .sysroot
        .path
        .join(format!("ostree/deploy/testos/deploy/{}.0", host.base_v1));
    assert!(!gone.exists(), "{} still exists", gone.display());

    // Offline there is no pending deployment; asking to remove one changes nothing.
    let out = ok(&pkglayer(&host.sysroot.path, &["cleanup", "--pending"]));
    assert_eq!(out, "Nothing to remove.\n");
    assert_eq!(host.sysroot.admin_status().unwrap().len(), 1);
}

#[test]
fn cleanup_needs_something_to_clean() {
    require_root!();
    let host = TestHost::new().unwrap();
    let output = pkglayer(&host.sysroot.path, &["cleanup"]);
    assert_eq!(output.status.code(), Some(2), "usage error");
    assert!(stderr(&output).contains("--pending"), "{}", stderr(&output));
}

#[test]
fn db_list_equals_rpm_qa_on_the_deployment() {
    require_root!();
    let (host, _) = host_with_two_deployments();
    let dirs = host.sysroot.deployment_dirs().unwrap();

    let listed = ok(&pkglayer(&host.sysroot.path, &["db", "list"]));
    let rpm_qa = host.sysroot.rpm_qa(&dirs[0]).unwrap();
    assert_eq!(listed.lines().collect::<Vec<_>>(), rpm_qa);
    assert!(listed.contains("kernel-core-6.1.0-1.2."), "{listed}");

    // The rollback deployment by index, and by checksum prefix, is the v1 package set.
    let mut v1: Vec<String> = base_packages("1").iter().map(|p| p.nevra()).collect();
    v1.sort();
    let by_index = ok(&pkglayer(&host.sysroot.path, &["db", "list", "1"]));
    assert_eq!(by_index.lines().collect::<Vec<_>>(), v1);
    assert_eq!(
        by_index.lines().collect::<Vec<_>>(),
        host.sysroot.rpm_qa(&dirs[1]).unwrap()
    );
    let by_prefix = ok(&pkglayer(
        &host.sysroot.path,
        &["db", "list", &host.base_v1[..12]],
    ));
    assert_eq!(by_prefix, by_index);

    let output = pkglayer(&host.sysroot.path, &["db", "list", "nonsense"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("error: no deployment or commit \"nonsense\" in stateroot testos"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_directory_that_is_not_a_sysroot_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let output = pkglayer(dir.path(), &["status"]);
    assert_eq!(output.status.code(), Some(1));
    let redactions = Redactions::new().name(&dir.path().display().to_string(), "[DIR]");
    insta::with_settings!({filters => redactions.filters()}, {
        insta::assert_snapshot!("not_a_sysroot", stderr(&output));
    });
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn a_missing_stateroot_lists_the_ones_there_are() {
    require_root!();
    let host = TestHost::new().unwrap();
    let output = pkglayer(&host.sysroot.path, &["--os", "nope", "status"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("error: no stateroot nope in "), "{err}");
    assert!(
        err.contains("hint: stateroots here: testos; pick one with --os"),
        "{err}"
    );
}

#[test]
fn a_stateroot_without_deployments_says_how_to_deploy() {
    require_root!();
    let host = TestHost::new().unwrap();
    host.sysroot
        .admin(&["os-init", &host.sysroot.sysroot_arg(), "empty"])
        .unwrap();
    let output = pkglayer(&host.sysroot.path, &["--os", "empty", "status"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("error: stateroot empty in "), "{err}");
    assert!(err.contains("has no deployments"), "{err}");
    assert!(err.contains("hint: deploy a base first"), "{err}");

    // With two stateroots and nothing booted, pkglayer asks which one.
    let output = pkglayer(&host.sysroot.path, &["status"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("several stateroots (empty, testos)"));
}

#[test]
fn a_corrupt_origin_is_named_and_left_alone() {
    require_root!();
    let host = TestHost::new().unwrap();
    let dir = &host.sysroot.deployment_dirs().unwrap()[0];
    let origin = format!("{}.origin", dir.display());
    std::fs::write(&origin, "this is not a key file\n").unwrap();

    for args in [
        &["status"][..],
        &["rollback"],
        &["cleanup", "--rollback"],
        &["db", "list"],
    ] {
        let output = pkglayer(&host.sysroot.path, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        assert!(
            err.contains(&format!("error: origin file {origin} is corrupt")),
            "{args:?}: {err}"
        );
        assert!(err.contains("hint: fix it by hand"), "{err}");
    }
    assert_eq!(
        std::fs::read_to_string(&origin).unwrap(),
        "this is not a key file\n"
    );

    // A key file without a refspec is caught by our own parser.
    std::fs::write(&origin, "[origin]\nunrelated=1\n").unwrap();
    let output = pkglayer(&host.sysroot.path, &["status"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "origin file {origin} is invalid: no [origin] refspec="
        )),
        "{err}"
    );
}

#[test]
fn a_held_lock_is_waited_for_or_refused_with_no_wait() {
    require_root!();
    let (host, v2) = host_with_two_deployments();
    let holder = host.sysroot.hold_lock();

    let output = pkglayer(&host.sysroot.path, &["--no-wait", "rollback"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("another ostree or pkglayer operation holds the sysroot lock"),
        "{err}"
    );
    assert!(
        err.contains("hint: try again when it has finished"),
        "{err}"
    );
    assert_eq!(
        host.sysroot.admin_status().unwrap()[0].checksum,
        v2,
        "nothing changed"
    );

    // Without --no-wait the rollback waits, says so, and goes ahead once the lock is free.
    let waiting = Pkglayer::new(&host.sysroot.path).arg("rollback").spawn();
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert_eq!(
        host.sysroot.admin_status().unwrap()[0].checksum,
        v2,
        "still waiting"
    );
    drop(holder);
    let output = waiting.wait_with_output().unwrap();
    ok(&output);
    assert!(
        stderr(&output).contains("waiting for the sysroot lock"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        host.sysroot.admin_status().unwrap()[0].checksum,
        host.base_v1
    );
}

#[test]
fn reboot_is_refused_on_a_sysroot_that_is_not_running() {
    require_root!();
    let (host, _) = host_with_two_deployments();
    let before = host.sysroot.admin_status().unwrap();
    for args in [
        &["rollback", "--reboot"][..],
        &["upgrade", "-r"],
        &["install", "--reboot", "strace"],
    ] {
        let err = failure(&pkglayer(&host.sysroot.path, args));
        assert_eq!(
            err,
            format!(
                "error: --reboot: the sysroot at {} is not the running system, so there is nothing to reboot into\n\
                 hint: leave out -r/--reboot; the new deployment is the default at that sysroot's next boot\n",
                host.sysroot.path.display()
            ),
            "{args:?}"
        );
    }
    assert_eq!(host.sysroot.admin_status().unwrap(), before);

    // Nothing is booted here: -b shows no deployment, and none is pending.
    let text = ok(&pkglayer(&host.sysroot.path, &["status", "-b"]));
    assert_eq!(
        text,
        "State: idle\nDeployments:\n  (none is booted: this sysroot is not the running system)\n"
    );
    let output = pkglayer(&host.sysroot.path, &["status", "--pending-exit-77"]);
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn help_lists_a_commands_own_options_before_the_global_ones() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pkglayer"))
        .args(["install", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    let own = help.find("--dry-run").unwrap();
    let heading = help.find("\nGlobal options:\n").unwrap();
    let global = help.find("--sysroot").unwrap();
    assert!(own < heading && heading < global, "{help}");
}
