//! RPM files in the formats rpm still installs: an old-format package, whose signature header holds
//! only the size and the MD5 digest of header and payload ("v3 signature"), layered from a local file
//! and from a repo; the same file altered is refused. The files are checked with the real rpm first.

use std::path::Path;
use std::process::Command;

mod support;

use pkglayer_testkit::{TestPackage, create_repo, fixtures, host_arch, require_root};
use support::{failure, ok};

type Host = support::host::RepoHost;

fn host() -> Host {
    Host::serving(vec![fixtures::helper_tools()])
}

fn old_tool() -> TestPackage {
    TestPackage::new("oldtool", "1.0-1").executable("/usr/bin/oldtool", "#!/bin/sh\necho old\n")
}

/// `rpmkeys -Kv` at rpm's default verification level (digests, no signature needed): its exit
/// status and what it printed.
fn rpm_check(rpm: &Path) -> (bool, String) {
    let output = Command::new("rpmkeys")
        .args(["-Kv", "--define", "_pkgverify_level digest"])
        .arg(rpm)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// The file is in the old format, and intact by rpm's own check: an MD5 digest that matches, and
/// no header or payload digest of later rpms.
fn assert_intact_v3(rpm: &Path) {
    let (intact, text) = rpm_check(rpm);
    assert!(intact, "{text}");
    assert!(text.contains("MD5 digest: OK"), "{text}");
    assert!(!text.contains("SHA"), "{text}");
}

/// Asserts that the newest deployment has `oldtool`: its file, and its entry in the rpmdb.
fn assert_layered(h: &Host) {
    let tree = h.newest();
    assert_eq!(
        std::fs::read_to_string(tree.join("usr/bin/oldtool")).unwrap(),
        "#!/bin/sh\necho old\n"
    );
    assert_eq!(
        h.host.sysroot.rpm_q(&tree, "oldtool").unwrap(),
        format!("oldtool-1.0-1.{}", host_arch())
    );
}

#[test]
fn an_intact_old_format_package_is_layered() {
    require_root!();
    let h = host();
    let rpm = old_tool().write_v3_to(h.host.dir()).unwrap();
    assert_intact_v3(&rpm);

    let out = ok(&h.pkglayer(&["install", rpm.to_str().unwrap()]));
    assert!(out.contains("Deployed "), "{out}");
    assert_eq!(h.deployments().len(), 2);
    assert_eq!(
        h.deployments()[1],
        h.host.base_v1,
        "the base stays as rollback"
    );
    assert_layered(&h);
    h.fsck();
}

#[test]
fn an_old_format_package_from_a_repo_is_layered() {
    require_root!();
    let h = host();
    let repo = h.host.dir().join("www/repo");
    let rpm = old_tool().write_v3_to(&repo.join("Packages")).unwrap();
    assert_intact_v3(&rpm);
    create_repo(&repo, &[], "gz").unwrap();

    ok(&h.pkglayer(&["install", "oldtool"]));
    assert_eq!(h.deployments().len(), 2);
    assert_layered(&h);
    h.fsck();
}

#[test]
fn an_old_format_package_with_a_changed_payload_byte_is_refused() {
    require_root!();
    let h = host();
    let rpm = old_tool().write_v3_to(h.host.dir()).unwrap();
    assert_intact_v3(&rpm);
    let mut bytes = std::fs::read(&rpm).unwrap();
    // A byte of the compressed payload: only the MD5 digest covers it.
    let at = bytes.len() - 40;
    bytes[at] ^= 0xff;
    std::fs::write(&rpm, bytes).unwrap();
    let (intact, text) = rpm_check(&rpm);
    assert!(!intact && text.contains("MD5 digest: BAD"), "{text}");

    let before = h.snapshot();
    let err = failure(&h.pkglayer(&["install", rpm.to_str().unwrap()]));
    assert!(err.contains(rpm.to_str().unwrap()), "names the file: {err}");
    assert!(
        err.contains(&format!(
            "the RPM of oldtool-1.0-1.{} is corrupt or was tampered with: MD5 digest",
            host_arch()
        )),
        "{err}"
    );
    assert_eq!(h.snapshot(), before, "nothing imported or deployed");
}
