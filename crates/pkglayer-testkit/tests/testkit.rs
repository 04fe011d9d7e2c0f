//! The test kit itself, checked with the real tools: a base built from test RPMs deploys, and its
//! rpmdb answers `rpm -qa`.

use pkglayer_testkit::{
    TestSysroot, Vendor, base_packages, base_ref, require_root, rpmdb_journal_mode,
};

#[test]
fn base_os_deploys_with_a_real_rpmdb() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let vendor = Vendor::create(&tmp.path().join("vendor")).unwrap();
    let packages = base_packages("1");
    let commit = vendor.publish(&base_ref(), "1", &packages).unwrap();
    let sysroot = TestSysroot::create(&tmp.path().join("sysroot"), &vendor, &base_ref()).unwrap();

    let status = sysroot.admin_status().unwrap();
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(status[0].checksum, commit);
    assert_eq!(status[0].version.as_deref(), Some("1"));

    let deployment = sysroot.deployment_dir(&status[0]);
    let mut expected: Vec<String> = packages.iter().map(|p| p.nevra()).collect();
    expected.sort();
    assert_eq!(sysroot.rpm_qa(&deployment).unwrap(), expected);
    assert!(deployment.join("usr/etc/passwd").is_file());
    assert!(
        deployment.join("etc/passwd").is_file(),
        "ostree merges /usr/etc into /etc"
    );
    assert!(!deployment.join("usr/share/rpm/rpmdb.sqlite-wal").exists());
    assert_eq!(
        rpmdb_journal_mode(&deployment.join("usr/share/rpm")).unwrap(),
        "delete"
    );
    let origin = sysroot.origin(0).unwrap();
    assert!(
        origin.contains(&format!("refspec=vendor:{}", base_ref())),
        "{origin}"
    );
    let options = sysroot.boot_options().unwrap();
    assert!(options[0].contains("root=LABEL=testos-root"), "{options:?}");
}
