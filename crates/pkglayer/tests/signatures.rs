//! Signatures: `gpgcheck=1` takes only packages signed by the repo's `gpgkey` (file:// or http://),
//! `repo_gpgcheck=1` only a `repomd.xml` the key signed. Keys are made with gpg, packages signed with
//! rpmsign; refusals leave deployments, origins, refs and the metadata cache as they were.

use std::path::PathBuf;

mod support;

use pkglayer_testkit::{SigningKey, TestPackage, create_repo, host_arch, require_root};
use support::host::RepoHost;
use support::{failure, ok};

fn packages() -> Vec<TestPackage> {
    vec![
        TestPackage::new("good", "1.0-1").file("/usr/share/good/README", "signed by the vendor\n"),
        TestPackage::new("plain", "1.0-1").file("/usr/share/plain/README", "not signed\n"),
        TestPackage::new("foreign", "1.0-1").file("/usr/share/foreign/README", "someone else\n"),
    ]
}

struct Signed {
    h: RepoHost,
    vendor: SigningKey,
    stranger: SigningKey,
}

/// A repo where `good` is signed by the vendor's key, `foreign` by a stranger's, `plain` by nobody.
fn signed_repo() -> Signed {
    let h = RepoHost::serving(packages());
    let vendor = SigningKey::generate("Test Vendor").unwrap();
    let stranger = SigningKey::generate("Stranger").unwrap();
    let rpm = |name: &str| repo_dir(&h).join(format!("Packages/{name}-1.0-1.{}.rpm", host_arch()));
    vendor.sign_rpm(&rpm("good")).unwrap();
    stranger.sign_rpm(&rpm("foreign")).unwrap();
    create_repo(&repo_dir(&h), &[], "gz").unwrap();
    // The public key is published beside the repo, for gpgkey=http://….
    std::fs::copy(vendor.public_key(), h.host.dir().join("www/vendor.asc")).unwrap();
    Signed {
        h,
        vendor,
        stranger,
    }
}

fn repo_dir(h: &RepoHost) -> PathBuf {
    h.host.dir().join("www/repo")
}

fn configure(h: &RepoHost, options: &str) {
    std::fs::write(
        h.reposdir.join("test.repo"),
        format!("[test]\nbaseurl={}\n{options}", h.server.url("repo/")),
    )
    .unwrap();
}

fn cached_repomd(h: &RepoHost) -> Vec<u8> {
    let dir = support::repo_cache_dir(&h.host.sysroot.path, "test");
    std::fs::read(dir.join("repomd.xml")).unwrap()
}

#[test]
fn gpgcheck_takes_only_packages_signed_by_the_repo_key() {
    require_root!();
    let s = signed_repo();
    let h = &s.h;
    configure(
        h,
        &format!(
            "gpgcheck=1\ngpgkey=file://{}\n",
            s.vendor.public_key().display()
        ),
    );
    let before = h.snapshot();
    let arch = host_arch();

    let err = failure(&h.pkglayer(&["install", "plain"]));
    assert!(
        err.contains(&format!(
            "package plain-1.0-1.{arch} from repo test is not signed"
        )),
        "{err}"
    );
    assert_eq!(h.snapshot(), before, "nothing imported, nothing deployed");

    let err = failure(&h.pkglayer(&["install", "foreign"]));
    assert!(
        err.contains(&format!(
            "package foreign-1.0-1.{arch} from repo test is signed with a key the repo's gpgkey does not hold"
        )),
        "{err}"
    );
    assert!(err.contains("NOKEY"), "{err}");
    assert_eq!(h.snapshot(), before);

    ok(&h.pkglayer(&["install", "good"]));
    assert!(h.newest().join("usr/share/good/README").exists());

    // Local packages answer to the same keys.
    let local = TestPackage::new("local-tool", "1.0-1").file("/usr/share/local-tool", "x\n");
    let unsigned = local.write_to(h.host.dir()).unwrap();
    let before = h.snapshot();
    let err = failure(&h.pkglayer(&["install", unsigned.to_str().unwrap()]));
    assert!(
        err.contains(&format!(
            "local package {} is not signed",
            unsigned.display()
        )),
        "{err}"
    );
    assert_eq!(h.snapshot(), before);
    s.vendor.sign_rpm(&unsigned).unwrap();
    ok(&h.pkglayer(&["install", unsigned.to_str().unwrap()]));
    assert!(h.newest().join("usr/share/local-tool").exists());
    h.fsck();
}

#[test]
fn keys_come_over_http_and_repo_gpgcheck_guards_repomd() {
    require_root!();
    let s = signed_repo();
    let h = &s.h;
    let repomd = repo_dir(h).join("repodata/repomd.xml");
    let signature = repo_dir(h).join("repodata/repomd.xml.asc");
    let sign = |key: &SigningKey| key.sign_detached(&repomd, &signature).unwrap();
    configure(
        h,
        &format!(
            "gpgcheck=1\nrepo_gpgcheck=1\ngpgkey={}\n",
            h.server.url("vendor.asc")
        ),
    );

    // No signature published at all.
    let before = h.snapshot();
    let err = failure(&h.pkglayer(&["install", "good"]));
    assert!(
        err.contains("the signature of repomd.xml cannot be fetched"),
        "{err}"
    );
    assert_eq!(h.snapshot(), before);

    sign(&s.vendor);
    ok(&h.pkglayer(&["install", "good"]));
    assert!(h.server.count("vendor.asc") >= 1, "the key came over HTTP");
    let trusted = cached_repomd(h);

    // The repo changes, signed by a stranger: refused, the cached metadata stays.
    create_repo(&repo_dir(h), &[], "gz").unwrap();
    std::fs::write(
        &repomd,
        String::from_utf8(std::fs::read(&repomd).unwrap()).unwrap() + "\n",
    )
    .unwrap();
    sign(&s.stranger);
    let before = h.snapshot();
    let err = failure(&h.pkglayer(&["refresh-md", "--force"]));
    assert!(
        err.contains("repomd.xml is signed with a key the repo's gpgkey does not hold"),
        "{err}"
    );
    assert_eq!(cached_repomd(h), trusted);
    assert_eq!(h.snapshot(), before);

    // Signed by the vendor, then changed: a bad signature.
    sign(&s.vendor);
    std::fs::write(
        &repomd,
        String::from_utf8(std::fs::read(&repomd).unwrap()).unwrap() + "\n",
    )
    .unwrap();
    let err = failure(&h.pkglayer(&["refresh-md", "--force"]));
    assert!(err.contains("repomd.xml has a bad signature"), "{err}");
    assert_eq!(cached_repomd(h), trusted);
}

#[test]
fn checking_signatures_without_a_key_is_a_configuration_error() {
    require_root!();
    let s = signed_repo();
    let h = &s.h;
    configure(h, "gpgcheck=1\n");
    let err = failure(&h.pkglayer(&["install", "good"]));
    assert!(
        err.contains("repo test checks signatures (gpgcheck or repo_gpgcheck) but names no gpgkey"),
        "{err}"
    );
    assert!(
        err.contains(&h.reposdir.join("test.repo").display().to_string()),
        "{err}"
    );
}
