//! Interrupted and concurrent operations: pkglayer killed with SIGKILL at every failpoint leaves the
//! deployments, their origins and boot entries exactly as they were, `ostree fsck` clean, nothing for
//! `cleanup` to miss, and the next install working; two operations never write at once.
//!
//! Needs the `failpoints` feature (`scripts/test` enables it).

#![cfg(feature = "failpoints")]

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

mod support;

use pkglayer_core::failpoint;
use pkglayer_core::layout::CacheFolder;
use pkglayer_testkit::{Script, TestPackage, host_arch, require_root};
use support::host::RepoHost;
use support::{Pkglayer, cache, failure};

/// tool, with a %post (so the scripts' failpoints are reached) and a library it requires, and
/// another package on its own.
fn packages() -> Vec<TestPackage> {
    vec![
        TestPackage::new("tool", "1.0-1")
            .requires("libtool-extra")
            .executable("/usr/bin/tool", "#!/bin/sh\necho tool\n")
            .script(Script::Post, "echo configured > /etc/tool.conf"),
        TestPackage::new("libtool-extra", "1.0-1").file("/usr/lib64/libtool-extra.so", "lib"),
        TestPackage::new("other", "1.0-1").file("/usr/share/other/README", "other\n"),
    ]
}

fn host() -> RepoHost {
    RepoHost::serving(packages())
}

/// Everything an interrupted operation must not change: the deployment list with serials, each
/// deployment's origin file, and the boot loader entries.
fn sysroot_state(h: &RepoHost) -> Vec<(String, String)> {
    let sysroot = &h.host.sysroot;
    let mut state = Vec::new();
    for (index, entry) in sysroot.admin_status().unwrap().iter().enumerate() {
        state.push((
            format!("deployment {index}"),
            format!("{}.{}", entry.checksum, entry.serial),
        ));
        state.push((format!("origin {index}"), sysroot.origin(index).unwrap()));
    }
    let entries = sysroot.path.join("boot/loader/entries");
    let mut names: Vec<_> = std::fs::read_dir(&entries)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        state.push((
            path.file_name().unwrap().to_string_lossy().into_owned(),
            std::fs::read_to_string(&path).unwrap(),
        ));
    }
    state
}

/// Entries under `dir` whose names start with `prefix`.
fn entries(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|list| {
            list.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_kill_at_any_failpoint_changes_nothing() {
    require_root!();
    let mut survived = Vec::new();
    // Points whose kill left something for cleanup to remove: proof that the check below bites.
    let mut left_scratch: Vec<&str> = Vec::new();
    let mut left_deployment: Vec<&str> = Vec::new();
    for point in failpoint::ALL {
        let h = host();
        let before = sysroot_state(&h);
        let output = h
            .command(&["install", "tool"])
            .env("PKGLAYER_FAILPOINT", point)
            .output();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.signal(),
            Some(9),
            "{point}: pkglayer was not killed there ({}): {stderr}",
            output.status
        );
        assert!(
            stderr.contains(&format!("failpoint {point}: killing")),
            "{stderr}"
        );

        assert_eq!(sysroot_state(&h), before, "{point}: the sysroot changed");
        h.fsck();

        let repo_tmp = h.host.sysroot.path.join("ostree/repo/tmp");
        let deploy_dir = h.host.sysroot.path.join("ostree/deploy/testos/deploy");
        let listed = h.host.sysroot.deployment_dirs().unwrap().len();
        if !entries(&repo_tmp, "pkglayer-").is_empty() {
            left_scratch.push(point);
        }
        if entries(&deploy_dir, "").len() > listed * 2 {
            left_deployment.push(point);
        }
        let cleaned = support::ok(&h.pkglayer(&["cleanup", "--cache"]));
        assert_eq!(
            entries(&repo_tmp, "pkglayer-"),
            Vec::<String>::new(),
            "{point}: {cleaned}"
        );
        // Each deployment is a directory plus its `.origin` file.
        assert_eq!(
            entries(&deploy_dir, "").len(),
            listed * 2,
            "{point}: a deployment directory nobody lists is left"
        );
        let metadata = cache(&h.host.sysroot.path).folder(CacheFolder::RepoMetadata);
        assert_eq!(entries(&metadata, ".staging"), Vec::<String>::new());
        assert_eq!(
            sysroot_state(&h),
            before,
            "{point}: cleanup changed the deployments"
        );

        support::ok(&h.pkglayer(&["install", "tool"]));
        let root = h.newest();
        assert_eq!(
            std::fs::read_to_string(root.join("usr/etc/tool.conf")).unwrap(),
            "configured\n"
        );
        assert!(
            h.host
                .sysroot
                .rpm_qa(&root)
                .unwrap()
                .contains(&format!("tool-1.0-1.{}", host_arch()))
        );
        h.fsck();
        survived.push(*point);
    }
    assert_eq!(survived, failpoint::ALL);
    assert_eq!(
        left_scratch,
        [
            "after-metadata",
            "mid-compose",
            "after-scripts",
            "after-commit"
        ]
    );
    assert_eq!(left_deployment, ["mid-deploy"]);
}

/// Spawns pkglayer and waits until a line of its stderr contains `text`. The rest of its stderr is
/// drained in the background, so it can go on writing.
fn spawn_until(command: Pkglayer, text: &str) -> Child {
    let mut child = command.spawn();
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut seen = Vec::new();
    while let Ok(line) = received.recv_timeout(Duration::from_secs(120)) {
        if line.contains(text) {
            return child;
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("pkglayer did not say {text:?}: {seen:?}");
}

#[test]
fn a_second_operation_waits_for_the_lock_or_fails_at_once() {
    require_root!();
    let h = host();
    let before = sysroot_state(&h);
    let holder = h
        .command(&["install", "tool"])
        .env("PKGLAYER_FAILPOINT", "after-lock=pause");
    let mut holder = spawn_until(holder, "failpoint after-lock: paused");

    // status tells which operation holds the lock.
    let status = support::ok(&h.pkglayer(&["status"]));
    assert!(
        status.starts_with(&format!(
            "State: busy (install, process {}, since ",
            holder.id()
        )),
        "{status}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&support::ok(&h.pkglayer(&["status", "--json"]))).unwrap();
    assert_eq!(json["state"]["state"], "busy");
    assert_eq!(json["state"]["operation"], "install");
    assert_eq!(json["state"]["pid"], holder.id());

    // --no-wait: refused at once, naming the lock.
    let no_wait = h.command(&["install", "other"]).arg("--no-wait");
    let err = failure(&no_wait.output());
    assert!(
        err.contains("another ostree or pkglayer operation holds the sysroot lock"),
        "{err}"
    );

    // Without it: says what it waits for, and does wait.
    let mut waiter = spawn_until(
        h.command(&["install", "other"]),
        "waiting for the sysroot lock",
    );
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        assert!(
            waiter.try_wait().unwrap().is_none(),
            "the waiter did not wait"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(sysroot_state(&h), before);

    // The holder dies mid-operation; the waiter takes over and finishes alone.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let status = waiter.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(support::ok(&h.pkglayer(&["status"])).starts_with("State: idle\n"));
    let qa = h.host.sysroot.rpm_qa(&h.newest()).unwrap();
    assert!(
        qa.contains(&format!("other-1.0-1.{}", host_arch())),
        "{qa:?}"
    );
    assert!(!qa.iter().any(|p| p.starts_with("tool-")), "{qa:?}");
    h.fsck();
}
