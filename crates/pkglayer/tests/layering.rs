//! Layering end to end: install, uninstall, the package cache, path rules and conflicts, on test-kit
//! sysroots with a repo served over HTTP on 127.0.0.1; results checked with ostree admin status,
//! ostree fsck, rpm -qa, origin files and the files of the new deployment.

use std::path::Path;
use std::process::Command;

mod support;

use pkglayer_core::layout::{CacheFolder, refs};
use pkglayer_testkit::{
    RepoServer, TestPackage, base_packages, base_ref, create_repo, fixtures, host_arch,
    require_root, rpmdb_journal_mode, run,
};
use serde_json::Value;
use support::{Redactions, cache, failure, ok};

/// strace and its dependencies, and packages for the path rules, conflicts and file kinds.
fn packages() -> Vec<TestPackage> {
    let mut packages = fixtures::strace_with_dependencies();
    packages.extend([
        TestPackage::new("confpkg", "1.0-1")
            .file("/etc/confpkg.conf", "setting=1\n")
            .dir("/var/lib/confpkg")
            .symlink("/var/log/confpkg", "/var/lib/confpkg")
            .executable("/opt/confpkg/bin/tool", "#!/bin/sh\n"),
        TestPackage::new("clash", "1.0-1").file("/usr/lib/os-release", "NAME=Impostor\n"),
        TestPackage::new("same-as-base", "1.0-1").file(
            "/usr/lib/os-release",
            "NAME=\"TestOS\"\nID=testos\nVERSION=\"1\"\nVERSION_ID=1\nPRETTY_NAME=\"TestOS 1\"\n",
        ),
        TestPackage::new("writes-var", "1.0-1").file("/var/lib/state.db", "data"),
        TestPackage::new("pinger", "1.0-1").executable_with_caps(
            "/usr/bin/pinger",
            "#!/bin/sh\n",
            "cap_net_raw=ep",
        ),
        TestPackage::new("linked", "1.0-1").hardlinks(
            &["/usr/bin/linked", "/usr/bin/linked-alias"],
            "#!/bin/sh\necho linked\n",
        ),
    ]);
    packages
}

type Host = support::host::RepoHost;

fn host() -> Host {
    Host::serving(packages())
}

fn base_nevras() -> Vec<String> {
    base_packages("1").iter().map(|p| p.nevra()).collect()
}

fn sorted(mut list: Vec<String>) -> Vec<String> {
    list.sort();
    list
}

#[test]
fn install_layers_packages_with_their_dependencies() {
    require_root!();
    let h = host();
    let arch = host_arch();
    let out = ok(&h.pkglayer(&["install", "strace"]));
    assert!(out.contains("Summary: install 3 packages\n"), "{out}");
    assert!(out.contains("Deployed "), "{out}");

    let deployments = h.deployments();
    let redactions = Redactions::new()
        .name(&h.host.base_v1, "[BASE_V1]")
        .name(&deployments[0], "[LAYERED]");
    insta::with_settings!({filters => redactions.filters()}, {
        insta::assert_snapshot!("install_strace", out);
    });
    assert_eq!(deployments.len(), 2);
    assert_ne!(deployments[0], h.host.base_v1);
    assert_eq!(deployments[1], h.host.base_v1, "the base stays as rollback");

    let tree = h.newest();
    assert_eq!(
        std::fs::read_to_string(tree.join("usr/bin/strace")).unwrap(),
        "#!/bin/sh\necho strace 6.1\n"
    );
    assert!(tree.join("usr/bin/helper").is_file());
    assert_eq!(
        std::fs::read_to_string(tree.join("usr/lib64/libfoo.so.2")).unwrap(),
        "libfoo 2"
    );
    let mut expected = base_nevras();
    expected.extend([
        format!("helper-tools-1.0-1.{arch}"),
        format!("libfoo-2.3-1.{arch}"),
        format!("strace-6.1-1.{arch}"),
    ]);
    assert_eq!(h.host.sysroot.rpm_qa(&tree).unwrap(), sorted(expected));
    assert!(!tree.join("usr/share/rpm/rpmdb.sqlite-wal").exists());
    // The product finalised its rpmdb for a read-only tree; checked with sqlite3, not its own code.
    assert_eq!(
        rpmdb_journal_mode(&tree.join("usr/share/rpm")).unwrap(),
        "delete"
    );

    let origin = h.host.sysroot.origin(0).unwrap();
    assert!(
        origin.contains(&format!("baserefspec=vendor:{}", base_ref())),
        "{origin}"
    );
    assert!(origin.contains("requested=strace;"), "{origin}");
    h.fsck();

    let status: Value = serde_json::from_str(&ok(&h.pkglayer(&["status", "--json"]))).unwrap();
    let first = &status["deployments"][0];
    assert_eq!(first["base-checksum"], h.host.base_v1.as_str());
    assert_eq!(first["requested-packages"], serde_json::json!(["strace"]));
    // rpm-ostree's meaning: the requests that are layered; the NEVRAs are pkglayer's own key.
    assert_eq!(first["packages"], serde_json::json!(["strace"]));
    assert_eq!(
        first["layered-nevras"],
        serde_json::json!([
            format!("helper-tools-1.0-1.{arch}"),
            format!("libfoo-2.3-1.{arch}"),
            format!("strace-6.1-1.{arch}")
        ])
    );
    assert_eq!(first["version"], "1");
    assert_eq!(first["base-version"], "1");
    assert_eq!(first["base-checksum"], h.host.base_v1.as_str());
    assert!(first["base-timestamp"].as_u64().unwrap() <= first["timestamp"].as_u64().unwrap());
    assert_eq!(first["base-commit-meta"]["version"], "1");
    assert_eq!(first["layered-commit-meta"]["ostree.bootable"], true);
    assert_eq!(
        first["layered-commit-meta"]["pkglayer.base-commit"],
        h.host.base_v1.as_str()
    );
    assert_eq!(first["unlocked"], "none");
    assert_eq!(first["gpg-enabled"], false);
    assert_eq!(first["booted"], false);
    assert_eq!(status["state"], serde_json::json!({"state": "idle"}));
    assert_eq!(status["cached-update"], serde_json::Value::Null);
    // The human form of a plain layered host: the layered deployment on base 1, the base behind it.
    let text = ok(&h.pkglayer(&["status"]));
    let redactions = Redactions::new().name(&h.host.base_v1, "[BASE_V1]");
    insta::with_settings!({filters => redactions.filters()}, {
        insta::assert_snapshot!("status_layered", text);
    });
    for options in h.host.sysroot.boot_options().unwrap() {
        assert!(options.contains("root=LABEL=testos-root"), "{options}");
    }

    // The same request again: refused, or with --idempotent, nothing to do.
    let err = failure(&h.pkglayer(&["install", "strace"]));
    assert!(err.contains("error: strace is already requested"), "{err}");
    insta::with_settings!({filters => Redactions::new().filters()}, {
        insta::assert_snapshot!("install_already_requested", err);
    });
    let again = h.pkglayer(&["install", "--idempotent", "--unchanged-exit-77", "strace"]);
    assert_eq!(again.status.code(), Some(77));
    assert!(String::from_utf8_lossy(&again.stdout).contains("No change."));
    assert_eq!(h.deployments(), deployments);
    assert_eq!(h.server.count(&format!("strace-6.1-1.{arch}.rpm")), 1);
}

#[test]
fn uninstall_removes_only_what_was_requested() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "strace"]));
    let layered = h.deployments()[0].clone();

    let err = failure(&h.pkglayer(&["uninstall", "libfoo"]));
    assert!(err.contains("libfoo was not requested"), "{err}");
    assert!(err.contains("layered as a dependency"), "{err}");
    let err = failure(&h.pkglayer(&["uninstall", "setup"]));
    assert!(
        err.contains("setup is part of the base image (setup-2.14-1.testos.noarch)"),
        "{err}"
    );
    let err = failure(&h.pkglayer(&["uninstall", "nothing-like-it"]));
    assert!(err.contains("nothing-like-it is not layered"), "{err}");
    assert_eq!(h.deployments()[0], layered, "refusals change nothing");

    let out = ok(&h.pkglayer(&["uninstall", "strace"]));
    assert!(out.contains("Summary: remove 3 packages\n"), "{out}");
    let redactions = Redactions::new().name(&h.host.base_v1, "[BASE_V1]");
    insta::with_settings!({filters => redactions.filters()}, {
        insta::assert_snapshot!("uninstall_strace", out);
    });
    let deployments = h.deployments();
    assert_eq!(
        deployments[0], h.host.base_v1,
        "back to the plain base commit"
    );
    assert_eq!(
        h.host.sysroot.rpm_qa(&h.newest()).unwrap(),
        sorted(base_nevras())
    );
    let origin = h.host.sysroot.origin(0).unwrap();
    assert!(
        origin.contains(&format!("\nrefspec=vendor:{}", base_ref())),
        "{origin}"
    );
    assert!(!origin.contains("baserefspec"), "{origin}");

    // Installing again takes everything from the package cache.
    let downloads = h.server.count(".rpm");
    let out = ok(&h.pkglayer(&["install", "strace"]));
    assert!(
        out.contains("Every package of the layer (3 packages) was in the package cache."),
        "{out}"
    );
    assert_eq!(h.server.count(".rpm"), downloads);
    h.fsck();
}

#[test]
fn etc_var_and_opt_follow_the_path_rules() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "confpkg"]));
    let tree = h.newest();
    assert_eq!(
        std::fs::read_to_string(tree.join("usr/etc/confpkg.conf")).unwrap(),
        "setting=1\n"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("etc/confpkg.conf")).unwrap(),
        "setting=1\n",
        "ostree merged the new /etc file into the deployment's /etc"
    );
    assert!(tree.join("usr/lib/opt/confpkg/bin/tool").is_file());
    let tmpfiles =
        std::fs::read_to_string(tree.join("usr/lib/tmpfiles.d/pkglayer-confpkg.conf")).unwrap();
    assert_eq!(
        tmpfiles,
        "L /opt/confpkg - - - - /usr/lib/opt/confpkg\n\
         d /var/lib/confpkg 0755 root root - -\n\
         L /var/log/confpkg - - - - /var/lib/confpkg\n"
    );
    assert!(
        !tree.join("var/lib/confpkg").exists(),
        "/var is the machine's, not the image's"
    );

    let err = failure(&h.pkglayer(&["install", "writes-var"]));
    assert!(
        err.contains("package writes-var-1.0-1") && err.contains("ships /var/lib/state.db"),
        "{err}"
    );
    assert_eq!(h.deployments().len(), 2, "nothing deployed");
}

#[test]
fn file_conflicts_name_both_owners() {
    require_root!();
    let h = host();
    let before = h.deployments();
    let err = failure(&h.pkglayer(&["install", "clash"]));
    assert!(
        err.contains("file conflict: /usr/lib/os-release of package clash-1.0-1"),
        "{err}"
    );
    assert!(
        err.contains("differs from the one in the base image"),
        "{err}"
    );
    assert_eq!(h.deployments(), before, "nothing deployed");
    h.fsck();

    // Identical content is no conflict.
    ok(&h.pkglayer(&["install", "same-as-base"]));
}

#[test]
fn mistyped_requests_are_all_named_with_what_they_may_mean() {
    require_root!();
    let h = host();
    let before = h.snapshot();
    let err = failure(&h.pkglayer(&["install", "strca", "Strace", "nonesuch"]));
    assert!(
        err.contains(
            r#"error: Planning the transaction: no package in the enabled repos provides "Strace", "nonesuch" or "strca""#
        ),
        "{err}"
    );
    assert!(
        err.contains(r#"hint: did you mean strace (for "Strace"), strace (for "strca")?"#),
        "{err}"
    );
    let err = failure(&h.pkglayer(&["install", "./missing.rpm"]));
    assert!(
        err.contains("error: local package ./missing.rpm: no such file"),
        "{err}"
    );
    assert_eq!(h.snapshot(), before, "nothing changed");
}

#[test]
fn dnf_vars_and_enablerepo_disablerepo_choose_the_repos() {
    require_root!();
    let h = host();
    // The repo's URL through a variable of the host's /etc/dnf/vars, as dnf reads it.
    let vars = h.newest().join("etc/dnf/vars");
    std::fs::create_dir_all(&vars).unwrap();
    std::fs::write(vars.join("repodir"), "repo\n").unwrap();
    let url = h.server.url("repo/").replace("/repo/", "/$repodir/");
    std::fs::write(
        h.reposdir.join("test.repo"),
        format!("[test]\nbaseurl={url}\ngpgcheck=0\n"),
    )
    .unwrap();
    let before = h.snapshot();

    let err = failure(&h.pkglayer(&["install", "--disablerepo", "t*", "strace"]));
    assert!(err.contains("no enabled repos"), "{err}");
    assert!(
        err.contains(
            "hint: --disablerepo disabled every repo; leave it out, or add --enablerepo ID"
        ),
        "{err}"
    );
    let err = failure(&h.pkglayer(&["install", "--enablerepo", "updates", "strace"]));
    assert!(
        err.contains("--enablerepo updates: no repo has that id")
            && err.contains("hint: configured repos: test"),
        "{err}"
    );
    assert_eq!(h.snapshot(), before, "nothing changed");

    // `--releasever` in place of the base's VERSION_ID: a URL with it points elsewhere.
    std::fs::write(
        h.reposdir.join("test.repo"),
        format!("[test]\nbaseurl={url}$releasever/\ngpgcheck=0\n"),
    )
    .unwrap();
    let err = failure(&h.pkglayer(&["install", "--releasever", "nowhere", "strace"]));
    assert!(err.contains("/repo/nowhere/"), "{err}");
    std::fs::write(
        h.reposdir.join("test.repo"),
        format!("[test]\nbaseurl={url}\ngpgcheck=0\n"),
    )
    .unwrap();
    ok(&h.pkglayer(&[
        "install",
        "--disablerepo",
        "*",
        "--enablerepo",
        "test",
        "strace",
    ]));
    assert_eq!(
        h.host.sysroot.rpm_q(&h.newest(), "strace").as_deref(),
        Some(format!("strace-6.1-1.{}", host_arch()).as_str())
    );
}

#[test]
fn search_finds_packages_by_name_and_summary() {
    require_root!();
    let h = host();
    let arch = host_arch();
    let out = ok(&h.pkglayer(&["search", "TRACE"]));
    assert_eq!(out, format!("strace.{arch} : strace test package\n"));
    // Every term must match, in the name or the summary: "lib" in a name, "package" in a summary.
    let out = ok(&h.pkglayer(&["search", "lib", "package"]));
    let names: Vec<&str> = out.lines().map(|l| l.split('.').next().unwrap()).collect();
    assert_eq!(names, ["libfoo"], "{out}");
    assert_eq!(
        ok(&h.pkglayer(&["search", "nonesuch"])),
        "No matches found.\n"
    );
    let json: Value =
        serde_json::from_str(&ok(&h.pkglayer(&["search", "--json", "strace"]))).unwrap();
    assert_eq!(json[0]["nevra"], format!("strace-6.1-1.{arch}"));
    assert_eq!(json[0]["repo"], "test");
    assert_eq!(json[0]["name-matched"], true);
}

#[test]
fn cache_only_install_after_download_only() {
    require_root!();
    let h = host();
    let out = ok(&h.pkglayer(&["install", "--download-only", "strace"]));
    assert!(
        out.contains("Downloaded 3 packages into the cache; nothing deployed."),
        "{out}"
    );
    assert_eq!(h.deployments(), std::slice::from_ref(&h.host.base_v1));

    let Host {
        host,
        server,
        reposdir,
    } = h;
    drop(server);
    let h = Host {
        server: RepoServer::serve(Path::new("/nonexistent")).unwrap(),
        host,
        reposdir,
    };
    let out = ok(&h.pkglayer(&["install", "--cache-only", "strace"]));
    assert!(out.contains("Deployed "), "{out}");
    assert!(h.newest().join("usr/bin/strace").is_file());
    assert!(h.server.requests().is_empty(), "{:?}", h.server.requests());
}

#[test]
fn upgrade_moves_base_and_layered_packages_forward() {
    require_root!();
    let h = host();
    let arch = host_arch();
    ok(&h.pkglayer(&["install", "strace"]));
    let out = ok(&h.pkglayer(&["upgrade"]));
    assert!(
        out.contains(&format!("Base vendor:{}: up to date (1)", base_ref())),
        "{out}"
    );
    assert!(out.contains("No change."), "{out}");
    insta::with_settings!({filters => Redactions::new().filters()}, {
        insta::assert_snapshot!("upgrade_up_to_date", out);
    });

    // The vendor ships base 2, and the repo a newer strace.
    let v2 = h
        .host
        .vendor
        .publish(&base_ref(), "2", &base_packages("2"))
        .unwrap();
    let mut newer = packages();
    // Unlike 6.1, strace 6.2 needs no helper.
    newer.push(
        TestPackage::new("strace", "6.2-1")
            .requires("libfoo >= 2")
            .executable("/usr/bin/strace", "#!/bin/sh\necho strace 6.2\n"),
    );
    create_repo(&h.host.dir().join("www/repo"), &newer, "gz").unwrap();

    let before = h.deployments();
    let out = ok(&h.pkglayer(&["upgrade", "--check"]));
    assert!(
        out.contains(&format!("Base vendor:{}: 1 -> 2 ({v2})", base_ref())),
        "{out}"
    );
    assert_eq!(h.deployments(), before, "--check changes nothing");

    let out = ok(&h.pkglayer(&["upgrade"]));
    assert!(out.contains("Deployed "), "{out}");
    let deployments = h.deployments();
    let redactions = Redactions::new()
        .name(&v2, "[BASE_V2]")
        .name(&deployments[0], "[LAYERED_ON_V2]");
    insta::with_settings!({filters => redactions.filters()}, {
        insta::assert_snapshot!("upgrade_base_and_strace", out);
    });
    assert_eq!(deployments.len(), 2);
    assert_eq!(
        deployments[1], before[0],
        "the previous layered deployment is the rollback"
    );
    let status: Value = serde_json::from_str(&ok(&h.pkglayer(&["status", "--json"]))).unwrap();
    assert_eq!(status["deployments"][0]["base-checksum"], v2.as_str());
    assert_eq!(status["deployments"][0]["version"], "2");
    let tree = h.newest();
    assert_eq!(
        std::fs::read_to_string(tree.join("usr/bin/strace")).unwrap(),
        "#!/bin/sh\necho strace 6.2\n"
    );
    // strace 6.2 no longer needs helper-tools: re-deriving from the base drops it by itself.
    let mut expected: Vec<String> = base_packages("2").iter().map(|p| p.nevra()).collect();
    expected.extend([
        format!("libfoo-2.3-1.{arch}"),
        format!("strace-6.2-1.{arch}"),
    ]);
    assert_eq!(h.host.sysroot.rpm_qa(&tree).unwrap(), sorted(expected));
    let origin = h.host.sysroot.origin(0).unwrap();
    assert!(
        origin.contains("baserefspec=") && origin.contains("requested=strace;"),
        "{origin}"
    );
    h.fsck();
}

#[test]
fn local_rpms_are_imported_at_request_time_and_resolved_from_the_repos() {
    require_root!();
    let h = host();
    let arch = host_arch();
    let local = TestPackage::new("localtool", "0.9-1")
        .requires("libfoo >= 2")
        .executable("/usr/bin/localtool", "#!/bin/sh\necho local\n");
    let rpm = local.write_to(h.host.dir()).unwrap();
    let sha256 = run(Command::new("sha256sum").arg(&rpm)).unwrap();
    let sha256 = sha256.split_whitespace().next().unwrap();

    // The plan gives a local RPM the size of its file (its header knows only the payload's).
    let json: Value = serde_json::from_str(&ok(&h.pkglayer(&[
        "install",
        "--dry-run",
        "--json",
        rpm.to_str().unwrap(),
    ])))
    .unwrap();
    let planned = json["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["repo"] == "@commandline")
        .unwrap();
    assert_eq!(
        planned["download-size"],
        std::fs::metadata(&rpm).unwrap().len()
    );
    let out = ok(&h.pkglayer(&["install", rpm.to_str().unwrap()]));
    assert!(out.contains("Summary: install 2 packages\n"), "{out}");
    assert!(out.contains("@commandline"), "{out}");
    let tree = h.newest();
    assert!(tree.join("usr/bin/localtool").is_file());
    assert!(tree.join("usr/lib64/libfoo.so.2").is_file());
    let origin = h.host.sysroot.origin(0).unwrap();
    assert!(
        origin.contains(&format!("requested-local={sha256}:localtool-0.9-1.{arch};")),
        "{origin}"
    );
    let status: Value = serde_json::from_str(&ok(&h.pkglayer(&["status", "--json"]))).unwrap();
    assert_eq!(
        status["deployments"][0]["requested-local-packages"],
        serde_json::json!([format!("localtool-0.9-1.{arch}")])
    );
    assert_eq!(
        h.host.sysroot.rpm_q(&tree, "localtool").unwrap(),
        format!("localtool-0.9-1.{arch}")
    );

    // The file is not needed again: a chained install resolves it from the cache.
    std::fs::remove_file(&rpm).unwrap();
    ok(&h.pkglayer(&["install", "helper-tools"]));
    assert!(h.newest().join("usr/bin/localtool").is_file());

    ok(&h.pkglayer(&["uninstall", "localtool"]));
    assert!(!h.newest().join("usr/bin/localtool").exists());
    assert!(h.newest().join("usr/bin/helper").is_file());
    h.fsck();
}

#[test]
fn a_package_that_does_not_match_the_metadata_is_refused() {
    require_root!();
    let h = host();
    let arch = host_arch();
    let served = h
        .host
        .dir()
        .join(format!("www/repo/Packages/strace-6.1-1.{arch}.rpm"));
    // Same size, other bytes: only the checksum can tell.
    let mut bytes = std::fs::read(&served).unwrap();
    let end = bytes.len();
    bytes[end - 8..].copy_from_slice(b"tampered");
    std::fs::write(&served, bytes).unwrap();

    let before = h.deployments();
    let err = failure(&h.pkglayer(&["install", "strace"]));
    assert!(
        err.contains(&format!(
            "error: Layering: cannot download strace-6.1-1.{arch}"
        )),
        "{err}"
    );
    assert!(err.contains("checksum mismatch for"), "{err}");
    assert!(
        err.contains(&format!("Packages/strace-6.1-1.{arch}.rpm")),
        "{err}"
    );
    assert_eq!(h.deployments(), before);
    let refs = h
        .host
        .sysroot
        .ostree(&["refs", &format!("{}strace", refs::PACKAGES)])
        .unwrap();
    assert_eq!(refs.trim(), "", "nothing imported for strace");
    let leftovers: Vec<_> =
        std::fs::read_dir(cache(&h.host.sysroot.path).folder(CacheFolder::Downloads))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains("strace"))
            .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_interrupted_package_download_resumes() {
    require_root!();
    let h = host();
    let arch = host_arch();
    let name = format!("strace-6.1-1.{arch}.rpm");
    h.server
        .break_path(&name, pkglayer_testkit::Fault::TruncateOnce);
    ok(&h.pkglayer(&["install", "strace"]));
    assert!(h.newest().join("usr/bin/strace").is_file());
    let ranges = h.server.ranges();
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    assert!(ranges[0].0.ends_with(&name), "{ranges:?}");
    assert!(
        ranges[0].1 > 0,
        "continued from the bytes already there: {ranges:?}"
    );
    h.fsck();
}

#[test]
fn db_diff_and_cleanup_cache() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "strace"]));
    let layered = h.deployments()[0].clone();
    let diff = ok(&h.pkglayer(&["db", "diff"]));
    let redactions = Redactions::new()
        .name(&h.host.base_v1, "[BASE_V1]")
        .name(&layered, "[LAYERED]");
    insta::with_settings!({filters => redactions.filters()}, {
        insta::assert_snapshot!("db_diff_install_strace", diff);
    });
    let json: Value =
        serde_json::from_str(&ok(&h.pkglayer(&["db", "diff", "0", "1", "--json"]))).unwrap();
    assert_eq!(json["removed"].as_array().unwrap().len(), 3, "{json}");
    assert_eq!(json["added"], serde_json::json!([]));

    let package_refs = || -> Vec<String> {
        h.host
            .sysroot
            .ostree(&["refs", "--list"])
            .unwrap()
            .lines()
            .filter(|r| r.starts_with(refs::PACKAGES))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(package_refs().len(), 3);

    // While the layered deployment exists (as rollback), its packages stay cached.
    ok(&h.pkglayer(&["uninstall", "strace"]));
    let out = ok(&h.pkglayer(&["cleanup", "--cache"]));
    assert!(out.contains("Removed 0 cached packages"), "{out}");
    assert_eq!(package_refs().len(), 3);

    // Once no deployment uses them, they go with the operation that dropped the last user.
    ok(&h.pkglayer(&["cleanup", "--rollback"]));
    assert!(package_refs().is_empty());
    let out = ok(&h.pkglayer(&["cleanup", "--cache"]));
    assert!(out.contains("Removed 0 cached packages"), "{out}");
    h.fsck();

    let downloads = h.server.count(".rpm");
    ok(&h.pkglayer(&["install", "strace"]));
    assert_eq!(
        h.server.count(".rpm"),
        downloads + 3,
        "the cache was emptied, so they come again"
    );
}

#[test]
fn hardlinked_files_keep_their_content_and_their_link() {
    use std::os::unix::fs::MetadataExt;
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "linked"]));
    let tree = h.newest();
    let (a, b) = (
        tree.join("usr/bin/linked"),
        tree.join("usr/bin/linked-alias"),
    );
    for path in [&a, &b] {
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            "#!/bin/sh\necho linked\n"
        );
    }
    let (a, b) = (
        std::fs::metadata(&a).unwrap(),
        std::fs::metadata(&b).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "one file, two names");
    assert_eq!(a.mode() & 0o7777, 0o755);
}

#[test]
fn file_capabilities_are_kept() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "pinger"]));
    let pinger = h.newest().join("usr/bin/pinger");
    let caps = run(Command::new("getcap").arg(&pinger)).unwrap();
    assert_eq!(caps.trim(), format!("{} cap_net_raw=ep", pinger.display()));
    h.fsck();
}

#[test]
fn paths_under_the_usrmove_links_land_under_usr() {
    require_root!();
    // Like an early libtirpc of CentOS Stream 9: files under /lib64, which OSTree bases (and the
    // test base) link to usr/lib64.
    let h = Host::serving(vec![
        TestPackage::new("oldlayout", "1.0-1")
            .file("/lib64/liboldlayout.so.1", "library\n")
            .symlink("/lib64/liboldlayout.so", "liboldlayout.so.1")
            .executable("/sbin/oldlayout-setup", "#!/bin/sh\n"),
    ]);
    ok(&h.pkglayer(&["install", "oldlayout"]));
    let tree = h.newest();
    assert_eq!(
        std::fs::read_to_string(tree.join("usr/lib64/liboldlayout.so.1")).unwrap(),
        "library\n"
    );
    assert_eq!(
        std::fs::read_link(tree.join("usr/lib64/liboldlayout.so")).unwrap(),
        std::path::PathBuf::from("liboldlayout.so.1")
    );
    assert!(tree.join("usr/sbin/oldlayout-setup").is_file());
    // Through the base's link, where rpm put them.
    assert!(tree.join("lib64/liboldlayout.so.1").is_file());
    assert_eq!(
        h.host.sysroot.rpm_q(&tree, "oldlayout"),
        Some(format!("oldlayout-1.0-1.{}", host_arch()))
    );
    h.fsck();
}
