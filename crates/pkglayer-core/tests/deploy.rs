//! Deploying a commit with an origin, in-process on a test-kit sysroot, checked with `ostree admin`.

use pkglayer_core::{Origin, Sysroot, deploy};
use pkglayer_testkit::{TestHost, base_packages, base_ref, require_root};

#[test]
fn deploy_commit_writes_origin_keeps_kargs_and_prunes() {
    require_root!();
    let host = TestHost::new().unwrap();
    let v2 = host
        .vendor
        .publish(&base_ref(), "2", &base_packages("2"))
        .unwrap();
    host.sysroot.pull(&base_ref()).unwrap();

    let sysroot = Sysroot::open(&host.sysroot.path, None).unwrap();
    let mut origin = sysroot.origin(&sysroot.current()).unwrap();
    origin.requested.insert("strace".into());
    let lock = sysroot.lock("test").unwrap();
    deploy::deploy_commit(&sysroot, &lock, &v2, &origin).unwrap();
    drop(lock);

    let status = host.sysroot.admin_status().unwrap();
    let order: Vec<&str> = status.iter().map(|e| e.checksum.as_str()).collect();
    assert_eq!(
        order,
        [v2.as_str(), host.base_v1.as_str()],
        "new first, old kept as rollback"
    );
    let written = host.sysroot.origin(0).unwrap();
    assert_eq!(
        Origin::parse(&written)
            .unwrap()
            .requested
            .into_iter()
            .collect::<Vec<_>>(),
        ["strace"]
    );
    assert!(
        written.contains(&format!("baserefspec=vendor:{}", base_ref())),
        "{written}"
    );
    for options in host.sysroot.boot_options().unwrap() {
        assert!(
            options.contains("root=LABEL=testos-root console=ttyS0"),
            "{options}"
        );
    }
    // /etc of the new deployment was merged from the old one.
    let new_dir = host.sysroot.deployment_dir(&status[0]);
    assert!(new_dir.join("etc/passwd").is_file());
    assert!(new_dir.join("etc/os-release").exists());

    // A third deployment (back to v1, plain) replaces the oldest: offline, only the previous default stays.
    let sysroot = Sysroot::open(&host.sysroot.path, None).unwrap();
    let lock = sysroot.lock("test").unwrap();
    let plain = Origin::new(format!("vendor:{}", base_ref()));
    deploy::deploy_commit(&sysroot, &lock, &host.base_v1, &plain).unwrap();
    let status = host.sysroot.admin_status().unwrap();
    let order: Vec<&str> = status.iter().map(|e| e.checksum.as_str()).collect();
    assert_eq!(order, [host.base_v1.as_str(), v2.as_str()]);
    assert_eq!(
        status[0].serial, 1,
        "a second deployment of the same commit"
    );
    let written = host.sysroot.origin(0).unwrap();
    assert!(
        written.contains(&format!("\nrefspec=vendor:{}", base_ref())),
        "{written}"
    );
    assert!(!written.contains("[packages]"), "{written}");
}
