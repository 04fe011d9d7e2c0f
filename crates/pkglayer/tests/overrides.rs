//! Overrides of base packages (rpm-ostree's `override remove|replace|reset`): what the new
//! deployment holds (files, rpm database), what the origin says, and that overrides carry on over a
//! host's life (upgrades that update or drop the package, rollback).

use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

use pkglayer_testkit::{TestPackage, base_packages, base_ref, create_repo, require_root};
use serde_json::Value;
use support::host::RepoHost;
use support::{failure, ok};

/// Extra base packages: an editor with a file it shares with its docs, and an app that needs a
/// library.
fn extra_base(version: &str) -> Vec<TestPackage> {
    vec![
        TestPackage::new("nano", &format!("{version}.0-1"))
            .executable("/usr/bin/nano", "#!/bin/sh\necho nano\n")
            .dir("/usr/share/nano")
            .file("/usr/share/nano/nanorc", "set nowrap\n")
            .file("/usr/share/doc/nano-common.txt", "shared\n"),
        TestPackage::new("nano-docs", &format!("{version}.0-1"))
            .arch("noarch")
            .file("/usr/share/doc/nano-common.txt", "shared\n")
            .file("/usr/share/doc/nano.txt", "read me\n"),
        TestPackage::new("app", "1.0-1")
            .requires("libapp")
            .executable("/usr/bin/app", "#!/bin/sh\necho app\n"),
        TestPackage::new("libapp", "1.0-1").file("/usr/lib64/libapp.so", "libapp 1.0\n"),
    ]
}

fn base(version: &str, extra: Vec<TestPackage>) -> Vec<TestPackage> {
    let mut packages = base_packages(version);
    packages.extend(extra);
    packages
}

fn host() -> RepoHost {
    RepoHost::new(&base("1", extra_base("1")), |_| {
        vec![TestPackage::new("tinyedit", "2.0-1").executable("/usr/bin/tinyedit", "#!/bin/sh\n")]
    })
}

/// Publishes base `version` of the standard packages plus `extra`.
fn publish(h: &RepoHost, version: &str, extra: Vec<TestPackage>) -> String {
    h.host
        .vendor
        .publish(&base_ref(), version, &base(version, extra))
        .unwrap()
}

/// `rpm ARGS` against a deployment's rpm database (Debian's rpm looks elsewhere by default).
fn rpm(deployment: &Path, args: &[&str]) -> std::process::Output {
    Command::new("rpm")
        .arg("--root")
        .arg(deployment)
        .args(["--dbpath", "/usr/share/rpm"])
        .args(args)
        .output()
        .unwrap()
}

fn rpm_q(h: &RepoHost, name: &str) -> Option<String> {
    h.host.sysroot.rpm_q(&h.newest(), name)
}

/// `rpm -V` of `name` in the default deployment passes (OSTree trees have no mtimes).
fn verifies(h: &RepoHost, name: &str) {
    let output = rpm(&h.newest(), &["-V", "--nomtime", name]);
    assert!(
        output.status.success(),
        "rpm -V {name}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The `[overrides]` lines of deployment `index`'s origin, and its refspec key.
fn origin(h: &RepoHost, index: usize) -> String {
    h.host.sysroot.origin(index).unwrap()
}

fn status_json(h: &RepoHost) -> Value {
    serde_json::from_str(&ok(&h.pkglayer(&["status", "--json"]))).unwrap()
}

fn local_rpm(h: &RepoHost, package: TestPackage) -> PathBuf {
    let dir = h.host.dir().join("local");
    std::fs::create_dir_all(&dir).unwrap();
    package.write_to(&dir).unwrap()
}

#[test]
fn override_remove_drops_files_and_rpmdb_entries_but_not_what_others_own() {
    require_root!();
    let h = host();
    let nano = rpm_q(&h, "nano").expect("the base has nano");
    let out = ok(&h.pkglayer(&["override", "remove", "nano"]));
    assert!(out.contains("Removing base packages:"), "{out}");
    assert!(out.contains(" nano "), "{out}");

    let tree = h.newest();
    assert_eq!(rpm_q(&h, "nano"), None, "nano is gone from the rpmdb");
    assert!(!tree.join("usr/bin/nano").exists());
    assert!(!tree.join("usr/share/nano/nanorc").exists());
    // Directories stay; a file another package owns stays, and that package still verifies.
    assert!(tree.join("usr/share/nano").is_dir());
    assert_eq!(
        std::fs::read_to_string(tree.join("usr/share/doc/nano-common.txt")).unwrap(),
        "shared\n"
    );
    verifies(&h, "nano-docs");
    verifies(&h, "app");

    let diff = ok(&h.pkglayer(&["db", "diff", "1", "0"]));
    assert!(diff.contains(&format!("- {nano}\n")), "{diff}");
    let text = origin(&h, 0);
    assert!(text.contains("baserefspec="), "{text}");
    assert!(text.contains("[overrides]\nremove=nano;\n"), "{text}");
    let status = ok(&h.pkglayer(&["status"]));
    assert!(status.contains("RemovedBasePackages: nano\n"), "{status}");
    let json = status_json(&h);
    let d = &json["deployments"][0];
    assert_eq!(d["requested-base-removals"], serde_json::json!(["nano"]));
    assert_eq!(d["base-removals"], serde_json::json!([nano]));

    // Removing it again, or something the base lacks, is refused by name.
    let err = failure(&h.pkglayer(&["override", "remove", "nano"]));
    assert!(err.contains("nano is removed already"), "{err}");
    let err = failure(&h.pkglayer(&["override", "remove", "emacs"]));
    assert!(err.contains("emacs is not a package of the base"), "{err}");

    // The previous deployment still has it; rollback makes it the default again.
    ok(&h.pkglayer(&["rollback"]));
    assert_eq!(rpm_q(&h, "nano").as_deref(), Some(nano.as_str()));
    assert!(h.newest().join("usr/bin/nano").exists());
}

#[test]
fn a_removal_other_packages_need_is_refused_naming_them() {
    require_root!();
    let h = host();
    let before = h.snapshot();
    let err = failure(&h.pkglayer(&["override", "remove", "libapp"]));
    assert!(err.contains("libapp"), "{err}");
    assert!(
        err.contains("app-1.0-1"),
        "names the package that needs it: {err}"
    );
    assert!(err.contains("override remove"), "says what to do: {err}");
    assert_eq!(h.snapshot(), before, "nothing changed");

    // Removed together, both go.
    ok(&h.pkglayer(&["override", "remove", "libapp", "app"]));
    assert_eq!(rpm_q(&h, "libapp"), None);
    assert_eq!(rpm_q(&h, "app"), None);
    assert!(!h.newest().join("usr/lib64/libapp.so").exists());
    assert!(origin(&h, 0).contains("remove=app;libapp;"));
}

#[test]
fn a_removal_a_layered_package_needs_is_refused_naming_it() {
    require_root!();
    let h = RepoHost::new(&base("1", extra_base("1")), |_| {
        vec![
            TestPackage::new("nano-plugin", "1-1")
                .requires("nano")
                .file("/usr/share/nano/plugin.nanorc", "x\n"),
        ]
    });
    ok(&h.pkglayer(&["install", "nano-plugin"]));
    let before = h.snapshot();
    let err = failure(&h.pkglayer(&["override", "remove", "nano"]));
    assert!(
        err.contains("nano-plugin-1-1"),
        "names what needs it: {err}"
    );
    assert_eq!(h.snapshot(), before, "nothing changed");
    // Dry, it says what would go and changes nothing.
    ok(&h.pkglayer(&["uninstall", "nano-plugin"]));
    let before = h.snapshot();
    let out = ok(&h.pkglayer(&["override", "remove", "nano", "--dry-run"]));
    assert!(out.contains("Removing base packages:"), "{out}");
    assert_eq!(h.snapshot(), before, "a dry run changes nothing");
}

#[test]
fn override_remove_with_install_is_one_transaction_and_reset_brings_the_base_back() {
    require_root!();
    let h = host();
    let deployments = h.deployments().len();
    ok(&h.pkglayer(&["override", "remove", "nano", "--install", "tinyedit"]));
    assert_eq!(h.deployments().len(), deployments + 1, "one new deployment");
    assert_eq!(rpm_q(&h, "nano"), None);
    assert_eq!(
        rpm_q(&h, "tinyedit").as_deref(),
        Some(&*format!(
            "tinyedit-2.0-1.{}",
            pkglayer_testkit::host_arch()
        ))
    );
    let text = origin(&h, 0);
    assert!(text.contains("requested=tinyedit;"), "{text}");
    assert!(text.contains("remove=nano;"), "{text}");

    let err = failure(&h.pkglayer(&["override", "reset", "vim"]));
    assert!(err.contains("vim has no override"), "{err}");
    assert!(err.contains("overridden: nano"), "{err}");

    let out = ok(&h.pkglayer(&["override", "reset", "nano"]));
    assert!(out.contains("Restoring base packages:"), "{out}");
    assert!(rpm_q(&h, "nano").is_some());
    assert!(h.newest().join("usr/bin/nano").exists());
    verifies(&h, "nano");
    let text = origin(&h, 0);
    assert!(!text.contains("[overrides]"), "{text}");
    assert!(text.contains("requested=tinyedit;"), "{text}");

    ok(&h.pkglayer(&["override", "remove", "nano-docs"]));
    ok(&h.pkglayer(&["uninstall", "tinyedit"]));
    ok(&h.pkglayer(&["override", "reset", "--all"]));
    let text = origin(&h, 0);
    assert!(text.contains("refspec="), "{text}");
    assert!(!text.contains("baserefspec="), "plain again: {text}");
    assert!(!text.contains("[overrides]"), "{text}");
}

#[test]
fn a_removal_survives_upgrades_and_turns_inactive_when_the_vendor_drops_the_package() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["override", "remove", "nano"]));
    // v2 updates nano: it stays removed.
    publish(&h, "2", extra_base("2"));
    ok(&h.pkglayer(&["upgrade"]));
    assert_eq!(
        rpm_q(&h, "testos-release").unwrap(),
        "testos-release-2-2.testos.noarch"
    );
    assert_eq!(rpm_q(&h, "nano"), None);
    assert!(!h.newest().join("usr/bin/nano").exists());
    assert!(
        rpm_q(&h, "nano-docs")
            .unwrap()
            .starts_with("nano-docs-2.0-1")
    );

    // v3 drops nano: the removal is inactive, shown, not an error.
    let without_nano: Vec<TestPackage> = extra_base("3")
        .into_iter()
        .filter(|p| !p.nevra().starts_with("nano-3"))
        .collect();
    publish(&h, "3", without_nano);
    ok(&h.pkglayer(&["upgrade"]));
    assert_eq!(
        rpm_q(&h, "testos-release").unwrap(),
        "testos-release-3-3.testos.noarch"
    );
    assert!(origin(&h, 0).contains("remove=nano;"));
    let status = ok(&h.pkglayer(&["status"]));
    assert!(status.contains("InactiveOverrides: nano\n"), "{status}");
    let json = status_json(&h);
    assert_eq!(
        json["deployments"][0]["base-removals"],
        serde_json::json!([])
    );
    assert_eq!(
        json["deployments"][0]["inactive-overrides"],
        serde_json::json!(["nano"])
    );

    // Rolling back goes to v2 with nano removed.
    ok(&h.pkglayer(&["rollback"]));
    assert_eq!(
        rpm_q(&h, "testos-release").unwrap(),
        "testos-release-2-2.testos.noarch"
    );
    assert_eq!(rpm_q(&h, "nano"), None);
}

#[test]
fn an_origin_rpm_ostree_wrote_with_overrides_is_carried_out_and_kept() {
    require_root!();
    let h = RepoHost::new(&base("1", extra_base("1")), |_| {
        vec![
            TestPackage::new("tinyedit", "2.0-1").executable("/usr/bin/tinyedit", "#!/bin/sh\n"),
            TestPackage::new("libapp", "1.2-1").file("/usr/lib64/libapp.so", "libapp 1.2\n"),
        ]
    });
    let dir = &h.host.sysroot.deployment_dirs().unwrap()[0];
    let path = format!("{}.origin", dir.display());
    let text = format!(
        "[origin]\nbaserefspec={}\n\n[overrides]\nremove=nano;\nreplace=repo=test,libapp;\n",
        h.host
            .sysroot
            .origin(0)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("refspec="))
            .unwrap()
    );
    std::fs::write(&path, &text).unwrap();
    ok(&h.pkglayer(&["install", "tinyedit"]));
    assert_eq!(rpm_q(&h, "nano"), None, "the removal is carried out");
    let arch = pkglayer_testkit::host_arch();
    assert_eq!(
        rpm_q(&h, "libapp"),
        Some(format!("libapp-1.2-1.{arch}")),
        "and the replacement"
    );
    assert!(rpm_q(&h, "tinyedit").is_some());
    // rpm-ostree's groups and keys as they were; the new request in its own group.
    assert_eq!(
        origin(&h, 0),
        format!("{text}\n[packages]\nrequested=tinyedit;\n")
    );
    let json = status_json(&h);
    assert_eq!(
        json["deployments"][0]["requested-base-removals"],
        serde_json::json!(["nano"])
    );

    // Resetting the removal leaves the replacement.
    ok(&h.pkglayer(&["override", "reset", "nano"]));
    assert!(rpm_q(&h, "nano").is_some());
    let written = origin(&h, 0);
    assert!(!written.contains("remove="), "{written}");
    assert!(
        written.contains("[overrides]\nreplace=repo=test,libapp;\n"),
        "{written}"
    );
    assert!(written.contains("baserefspec="), "{written}");
}

#[test]
fn override_replace_takes_a_local_rpm_in_place_of_the_base_package() {
    require_root!();
    let h = host();
    let file = local_rpm(
        &h,
        TestPackage::new("libapp", "1.1-1").file("/usr/lib64/libapp.so", "libapp 1.1\n"),
    );
    let out = ok(&h.pkglayer(&["override", "replace", file.to_str().unwrap()]));
    assert!(out.contains("Replacing base packages:"), "{out}");
    assert!(out.contains("1.0-1 -> 1.1-1"), "{out}");
    let arch = pkglayer_testkit::host_arch();
    assert_eq!(rpm_q(&h, "libapp"), Some(format!("libapp-1.1-1.{arch}")));
    assert_eq!(
        std::fs::read_to_string(h.newest().join("usr/lib64/libapp.so")).unwrap(),
        "libapp 1.1\n"
    );
    verifies(&h, "libapp");
    verifies(&h, "app");

    let text = origin(&h, 0);
    let sha = sha256_of(&file);
    assert!(
        text.contains(&format!(
            "[overrides]\nreplace-local={sha}:libapp-1.1-1.{arch};\n"
        )),
        "{text}"
    );
    let status = ok(&h.pkglayer(&["status"]));
    assert!(
        status.contains("ReplacedBasePackages: libapp 1.0-1 -> 1.1-1\n"),
        "{status}"
    );
    let json = status_json(&h);
    let d = &json["deployments"][0];
    assert_eq!(
        d["requested-base-local-replacements"],
        serde_json::json!([format!("libapp-1.1-1.{arch}")])
    );
    assert_eq!(
        d["base-local-replacements"],
        serde_json::json!([[
            format!("libapp-1.0-1.{arch}"),
            format!("libapp-1.1-1.{arch}")
        ]])
    );

    // The file is not needed any more: the next operation takes it from the package cache, and
    // the replacement carries over to the vendor's next base.
    std::fs::remove_file(&file).unwrap();
    ok(&h.pkglayer(&["install", "tinyedit"]));
    assert_eq!(rpm_q(&h, "libapp"), Some(format!("libapp-1.1-1.{arch}")));
    publish(&h, "2", extra_base("2"));
    ok(&h.pkglayer(&["upgrade"]));
    assert_eq!(
        rpm_q(&h, "testos-release").unwrap(),
        "testos-release-2-2.testos.noarch"
    );
    assert_eq!(rpm_q(&h, "libapp"), Some(format!("libapp-1.1-1.{arch}")));
    verifies(&h, "libapp");
    let err = failure(&h.pkglayer(&["uninstall", "nano"]));
    assert!(err.contains("`pkglayer override remove nano`"), "{err}");

    // A package the base lacks is no replacement.
    let other = local_rpm(
        &h,
        TestPackage::new("newpkg", "1-1").file("/usr/share/newpkg", "x"),
    );
    let err = failure(&h.pkglayer(&["override", "replace", other.to_str().unwrap()]));
    assert!(err.contains("replaces no base package"), "{err}");

    ok(&h.pkglayer(&["override", "reset", "libapp"]));
    assert_eq!(rpm_q(&h, "libapp"), Some(format!("libapp-1.0-1.{arch}")));
    assert_eq!(
        std::fs::read_to_string(h.newest().join("usr/lib64/libapp.so")).unwrap(),
        "libapp 1.0\n"
    );
}

#[test]
fn the_kernel_is_never_removed_or_replaced() {
    require_root!();
    let h = host();
    let before = h.snapshot();
    let err = failure(&h.pkglayer(&["override", "remove", "kernel-core"]));
    assert!(
        err.contains("removing kernel-core is not supported"),
        "{err}"
    );
    assert!(err.contains("initramfs"), "{err}");
    let kernel = local_rpm(
        &h,
        TestPackage::new("kernel-core", "6.2.0-1")
            .file("/usr/lib/modules/6.2.0/vmlinuz", "another kernel\n"),
    );
    let err = failure(&h.pkglayer(&["override", "replace", kernel.to_str().unwrap()]));
    assert!(
        err.contains("replacing kernel-core is not supported"),
        "{err}"
    );
    let err = failure(&h.pkglayer(&["override", "replace", "--from", "repo=test", "kernel-core"]));
    assert!(
        err.contains("replacing kernel-core is not supported"),
        "{err}"
    );
    assert_eq!(h.snapshot(), before, "nothing changed");

    // An origin another tool wrote is refused alike, before anything is deployed.
    let dir = &h.host.sysroot.deployment_dirs().unwrap()[0];
    let path = format!("{}.origin", dir.display());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}\n[overrides]\nremove=kernel-core;\n")).unwrap();
    let before = h.snapshot();
    let err = failure(&h.pkglayer(&["install", "tinyedit"]));
    assert!(
        err.contains("removing or replacing kernel-core is not supported"),
        "{err}"
    );
    assert!(err.contains("initramfs must match the kernel"), "{err}");
    assert_eq!(h.snapshot(), before, "nothing changed");
}

/// The value of `key=` in deployment `index`'s origin.
fn origin_key(h: &RepoHost, index: usize, key: &str) -> Option<String> {
    origin(h, index)
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")).map(str::to_string))
}

#[test]
fn reset_goes_back_to_the_vendor_tree_one_kind_or_both() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "tinyedit"]));
    ok(&h.pkglayer(&["override", "remove", "nano"]));

    ok(&h.pkglayer(&["reset", "--overrides"]));
    assert!(rpm_q(&h, "nano").is_some());
    assert!(rpm_q(&h, "tinyedit").is_some(), "layered packages stay");
    assert!(!origin(&h, 0).contains("[overrides]"));

    ok(&h.pkglayer(&["override", "remove", "nano"]));
    ok(&h.pkglayer(&["reset", "--overlays"]));
    assert_eq!(rpm_q(&h, "tinyedit"), None);
    assert_eq!(rpm_q(&h, "nano"), None, "overrides stay");
    assert!(origin(&h, 0).contains("remove=nano;"));

    ok(&h.pkglayer(&["install", "tinyedit"]));
    ok(&h.pkglayer(&["reset"]));
    assert_eq!(
        h.deployments()[0],
        h.host.base_v1,
        "the vendor's commit itself"
    );
    assert_eq!(
        origin_key(&h, 0, "refspec").as_deref(),
        Some(format!("vendor:{}", base_ref()).as_str())
    );
    assert!(!origin(&h, 0).contains("[packages]"));
    assert!(!origin(&h, 0).contains("[overrides]"));
}

#[test]
fn deploy_pins_a_version_or_commit_and_upgrade_unpins() {
    require_root!();
    let h = host();
    let v2 = publish(&h, "2", extra_base("2"));
    let v3 = publish(&h, "3", extra_base("3"));
    ok(&h.pkglayer(&["install", "tinyedit"]));
    ok(&h.pkglayer(&["override", "remove", "nano"]));

    // Pinning the base deployed now changes no file, yet it is a deployment: its origin differs.
    let out = ok(&h.pkglayer(&["deploy", "1"]));
    assert!(out.contains("Deployed "), "{out}");
    assert_eq!(
        origin_key(&h, 0, "override-commit"),
        Some(h.host.base_v1.clone())
    );

    let out = ok(&h.pkglayer(&["deploy", "2"]));
    assert!(out.contains(&format!("Base: {v2} (version 2)")), "{out}");
    assert_eq!(
        rpm_q(&h, "testos-release").unwrap(),
        "testos-release-2-2.testos.noarch"
    );
    assert!(rpm_q(&h, "tinyedit").is_some(), "the layer is kept");
    assert_eq!(rpm_q(&h, "nano"), None, "and the overrides");
    assert_eq!(origin_key(&h, 0, "override-commit"), Some(v2.clone()));

    // By checksum, back to the first base: older is fine for deploy.
    ok(&h.pkglayer(&["deploy", &h.host.base_v1]));
    assert_eq!(
        rpm_q(&h, "testos-release").unwrap(),
        "testos-release-1-1.testos.noarch"
    );
    assert_eq!(
        origin_key(&h, 0, "override-commit"),
        Some(h.host.base_v1.clone())
    );

    let err = failure(&h.pkglayer(&["deploy", "9"]));
    assert!(err.contains("has no commit with version 9"), "{err}");
    assert!(err.contains("3, 2, 1"), "lists the versions: {err}");

    ok(&h.pkglayer(&["upgrade"]));
    let status = status_json(&h);
    assert_eq!(status["deployments"][0]["base-checksum"], v3.as_str());
    assert_eq!(origin_key(&h, 0, "override-commit"), None, "unpinned");
    assert_eq!(rpm_q(&h, "nano"), None);
}

#[test]
fn rebase_follows_another_branch_with_the_layer_and_overrides() {
    require_root!();
    let h = host();
    let next_ref = base_ref().replace("stable", "next");
    let next = h
        .host
        .vendor
        .publish(&next_ref, "5", &base("5", extra_base("5")))
        .unwrap();
    ok(&h.pkglayer(&["install", "tinyedit"]));
    ok(&h.pkglayer(&["override", "remove", "nano"]));
    let out = ok(&h.pkglayer(&["rebase", &next_ref]));
    assert!(
        out.contains(&format!(
            "Rebasing: vendor:{} -> vendor:{next_ref}",
            base_ref()
        )),
        "{out}"
    );
    assert_eq!(
        origin_key(&h, 0, "baserefspec"),
        Some(format!("vendor:{next_ref}"))
    );
    assert_eq!(
        status_json(&h)["deployments"][0]["base-checksum"],
        next.as_str()
    );
    assert_eq!(
        rpm_q(&h, "testos-release").unwrap(),
        "testos-release-5-5.testos.noarch"
    );
    assert!(rpm_q(&h, "tinyedit").is_some());
    assert_eq!(rpm_q(&h, "nano"), None);

    let err = failure(&h.pkglayer(&["rebase", "testos/nowhere"]));
    assert!(err.contains("testos/nowhere"), "{err}");
}

#[test]
fn override_replace_from_a_repo_follows_its_builds_until_the_base_has_them() {
    require_root!();
    let arch = pkglayer_testkit::host_arch();
    let h = repo_with_libapp("1.2-1");
    let out = ok(&h.pkglayer(&["override", "replace", "--from", "repo=test", "libapp"]));
    assert!(out.contains("Replacing base packages:"), "{out}");
    assert_eq!(rpm_q(&h, "libapp"), Some(format!("libapp-1.2-1.{arch}")));
    assert_eq!(
        std::fs::read_to_string(h.newest().join("usr/lib64/libapp.so")).unwrap(),
        "libapp 1.2-1\n"
    );
    verifies(&h, "libapp");
    assert!(origin(&h, 0).contains("[overrides]\nreplace=repo=test,libapp;\n"));
    let status = ok(&h.pkglayer(&["status"]));
    assert!(
        status.contains("ReplacedBasePackages: libapp 1.0-1 -> 1.2-1\n"),
        "{status}"
    );
    let d = &status_json(&h)["deployments"][0];
    assert_eq!(
        d["requested-base-remote-replacements"],
        serde_json::json!(["repo=test,libapp"])
    );
    assert_eq!(
        d["base-remote-replacements"],
        serde_json::json!([[
            format!("libapp-1.0-1.{arch}"),
            format!("libapp-1.2-1.{arch}")
        ]])
    );

    // Not in the repo, or not in the base: refused by name.
    let err = failure(&h.pkglayer(&["override", "replace", "--from", "repo=test", "nano"]));
    assert!(err.contains("repo test has no package nano"), "{err}");
    let err = failure(&h.pkglayer(&["override", "replace", "--from", "repo=test", "emacs"]));
    assert!(err.contains("emacs is not a package of the base"), "{err}");

    // The repo's newer build comes with the next upgrade.
    create_repo(&h.host.dir().join("www/repo"), &[libapp("1.3-1")], "gz").unwrap();
    ok(&h.pkglayer(&["upgrade"]));
    assert_eq!(rpm_q(&h, "libapp"), Some(format!("libapp-1.3-1.{arch}")));

    // Once the vendor ships that very build, the replacement is inactive.
    let mut v2 = extra_base("2");
    v2.retain(|p| !p.nevra().starts_with("libapp-"));
    v2.push(libapp("1.3-1"));
    publish(&h, "2", v2);
    ok(&h.pkglayer(&["upgrade"]));
    assert_eq!(rpm_q(&h, "libapp"), Some(format!("libapp-1.3-1.{arch}")));
    let d = &status_json(&h)["deployments"][0];
    assert_eq!(
        d["inactive-overrides"],
        serde_json::json!([format!("libapp-1.3-1.{arch}")])
    );
    assert_eq!(d["base-remote-replacements"], serde_json::json!([]));

    ok(&h.pkglayer(&["override", "reset", "libapp"]));
    assert!(!origin(&h, 0).contains("[overrides]"));
}

/// A build of libapp, the library the base's app needs.
fn libapp(version: &str) -> TestPackage {
    TestPackage::new("libapp", version).file("/usr/lib64/libapp.so", format!("libapp {version}\n"))
}

/// The standard host, its repo offering libapp `version` (newer than the base's 1.0-1).
fn repo_with_libapp(version: &str) -> RepoHost {
    let version = version.to_string();
    RepoHost::new(&base("1", extra_base("1")), move |_| vec![libapp(&version)])
}

fn sha256_of(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_lockfile_carries_overrides_and_local_packages_to_another_host() {
    require_root!();
    let arch = pkglayer_testkit::host_arch();
    let h = repo_with_libapp("1.2-1");
    let nano = local_rpm(
        &h,
        TestPackage::new("nano", "9.0-1").executable("/usr/bin/nano", "#!/bin/sh\necho nano 9\n"),
    );
    let hello = local_rpm(
        &h,
        TestPackage::new("hello-local", "1.0-1").file("/usr/share/hello-local/readme", "hi\n"),
    );
    ok(&h.pkglayer(&["override", "remove", "nano-docs"]));
    ok(&h.pkglayer(&["override", "replace", "--from", "repo=test", "libapp"]));
    ok(&h.pkglayer(&["override", "replace", nano.to_str().unwrap()]));
    ok(&h.pkglayer(&["install", hello.to_str().unwrap()]));
    let path = h.host.dir().join("layer.lock.json");
    ok(&h.pkglayer(&["lock", "--output", path.to_str().unwrap()]));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        json["overrides"]["remove"],
        serde_json::json!(["nano-docs"])
    );
    assert_eq!(
        json["overrides"]["replace-from"],
        serde_json::json!([{"repo": "test", "packages": ["libapp"]}])
    );
    let entry = |name: &str| -> Value {
        json["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["nevra"].as_str().unwrap().starts_with(name))
            .unwrap_or_else(|| panic!("{name} is not locked: {json}"))
            .clone()
    };
    assert_eq!(entry("libapp")["replaces"], format!("libapp-1.0-1.{arch}"));
    assert_eq!(entry("libapp")["repo"], "test");
    assert_eq!(entry("nano")["replaces"], format!("nano-1.0-1.{arch}"));
    assert_eq!(entry("nano")["repo"], "@commandline");
    assert_eq!(entry("nano")["sha256"], sha256_of(&nano).as_str());
    assert_eq!(entry("hello-local")["repo"], "@commandline");
    assert!(entry("hello-local").get("replaces").is_none());

    // Meanwhile the repo gains a newer libapp: the override alone would take it, the lockfile not.
    create_repo(
        &h.host.dir().join("www/repo"),
        &[libapp("1.2-1"), libapp("1.3-1")],
        "gz",
    )
    .unwrap();
    let dir = h.host.dir().join("other");
    std::fs::create_dir_all(&dir).unwrap();
    let other = pkglayer_testkit::TestSysroot::create(&dir, &h.host.vendor, &base_ref()).unwrap();
    let install = |files: &[&Path]| {
        let mut command = support::Pkglayer::new(&dir)
            .args(["install", "--lockfile", path.to_str().unwrap()])
            .reposdir(&h.reposdir);
        for file in files {
            command = command.arg(file);
        }
        command.output()
    };
    let deployments = || -> Vec<String> {
        let status = other.admin_status().unwrap();
        status.into_iter().map(|e| e.checksum).collect()
    };
    let before = deployments();
    // This host never had the local packages: they are named, and must be given.
    let err = failure(&install(&[]));
    assert!(
        err.contains("nano-9.0-1") || err.contains("hello-local-1.0-1"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    // A file that is not one of them is refused, by name.
    let stranger = local_rpm(
        &h,
        TestPackage::new("stranger", "1.0-1").file("/usr/share/stranger", "x\n"),
    );
    let err = failure(&install(&[&nano, &hello, &stranger]));
    assert!(
        err.contains("is not a local package of the lockfile"),
        "{err}"
    );
    assert!(err.contains("stranger"), "{err}");
    assert_eq!(deployments(), before, "nothing deployed");

    ok(&install(&[&nano, &hello]));
    assert_eq!(deployments()[0], h.deployments()[0], "the same commit");
    let tree = other.deployment_dirs().unwrap()[0].clone();
    assert_eq!(
        other.rpm_q(&tree, "libapp"),
        Some(format!("libapp-1.2-1.{arch}"))
    );
    assert_eq!(other.rpm_q(&tree, "nano-docs"), None);
    assert_eq!(
        other.rpm_q(&tree, "nano"),
        Some(format!("nano-9.0-1.{arch}"))
    );
    assert!(tree.join("usr/share/hello-local/readme").exists());
    // The same keys in the origin (in the order each host's edits left them).
    let keys = |text: String| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter(|l| {
                l.starts_with("remove=") || l.starts_with("replace") || l.starts_with("requested")
            })
            .map(str::to_string)
            .collect()
    };
    let theirs = keys(origin(&h, 0));
    assert_eq!(theirs.len(), 4, "{theirs:?}");
    assert_eq!(keys(other.origin(0).unwrap()), theirs);
}
