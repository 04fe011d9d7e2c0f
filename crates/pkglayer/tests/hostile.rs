//! Hostile and broken input: malformed metadata, tampered and lying packages, paths that climb out,
//! hung servers, a garbage origin. Each gets a clear error and leaves the deployments, their origins
//! and the repo's refs exactly as they were.

use std::process::Command;
use std::time::{Duration, Instant};

mod support;

use pkglayer_testkit::{
    Fault, TestPackage, base_packages, create_repo, edit_metadata, host_arch, require_root, run,
};
use support::failure;
use support::host::RepoHost;

/// A package that installs fine.
fn good() -> TestPackage {
    TestPackage::new("good", "1.0-1").file("/usr/share/good/README", "fine\n")
}

fn packages() -> Vec<TestPackage> {
    vec![
        good(),
        TestPackage::new("tampered", "1.0-1").file("/usr/share/tampered/data", "x".repeat(4096)),
        TestPackage::new("climber", "1.0-1")
            .file("/usr/share/../../etc/climbed", "should never be anywhere\n"),
        TestPackage::new("through-link", "1.0-1")
            .symlink("/usr/share/escape", "/etc")
            .file("/usr/share/escape/passwd", "root::0:0::/:/bin/sh\n"),
    ]
}

fn host() -> RepoHost {
    RepoHost::serving(packages())
}

fn www(h: &RepoHost) -> std::path::PathBuf {
    h.host.dir().join("www/repo")
}

#[test]
fn malformed_primary_metadata_is_refused() {
    require_root!();
    let h = host();
    let before = h.snapshot();
    // Delivered intact (checksums match), but not well-formed XML.
    edit_metadata(&www(&h), "primary", |xml| xml[..xml.len() / 2].to_string()).unwrap();
    let err = failure(&h.pkglayer(&["install", "good"]));
    assert!(
        err.contains("the metadata of repo test is malformed"),
        "{err}"
    );
    assert!(err.contains("primary.xml"), "{err}");
    assert_eq!(h.snapshot(), before);
}

#[test]
fn malformed_repomd_is_refused() {
    require_root!();
    let h = host();
    let before = h.snapshot();
    let repomd = www(&h).join("repodata/repomd.xml");
    let text = std::fs::read_to_string(&repomd).unwrap();
    std::fs::write(&repomd, &text[..text.len() / 3]).unwrap();
    let err = failure(&h.pkglayer(&["install", "good"]));
    assert!(err.contains("repomd.xml"), "{err}");
    assert_eq!(h.snapshot(), before);
}

/// Changes a byte of the compressed payload of `tampered` in the repo; the metadata is regenerated,
/// so its checksum matches the altered file.
fn tamper(h: &RepoHost) {
    let rpm = www(h).join(format!("Packages/tampered-1.0-1.{}.rpm", host_arch()));
    let mut bytes = std::fs::read(&rpm).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 0xff;
    std::fs::write(&rpm, bytes).unwrap();
    create_repo(&www(h), &[], "gz").unwrap();
}

#[test]
fn a_package_altered_after_it_was_built_is_refused() {
    require_root!();
    let h = host();
    let before = h.snapshot();
    tamper(&h);

    let err = failure(&h.pkglayer(&["install", "tampered"]));
    assert!(
        err.contains(&format!(
            "the RPM of tampered-1.0-1.{} is corrupt or was tampered with",
            host_arch()
        )),
        "{err}"
    );
    assert_eq!(h.snapshot(), before, "nothing imported");
}

#[test]
fn a_refused_package_leaves_none_of_its_transaction_imported() {
    require_root!();
    let h = host();
    let before = h.snapshot();
    tamper(&h);

    // `good` arrives and imports (perhaps before `tampered` is even downloaded), yet the imports
    // are one transaction: the refusal leaves the package cache as it was.
    let err = failure(&h.pkglayer(&["install", "good", "tampered"]));
    assert!(err.contains("is corrupt or was tampered with"), "{err}");
    assert_eq!(h.snapshot(), before, "nothing imported, `good` included");
    h.fsck();

    // The same packages install once the repo is mended (the kept download no longer matches the
    // metadata, so it is fetched again).
    create_repo(&www(&h), &packages(), "gz").unwrap();
    support::ok(&h.pkglayer(&["refresh-md", "--force"]));
    support::ok(&h.pkglayer(&["install", "good", "tampered"]));
    assert_eq!(
        h.host.sysroot.rpm_q(&h.newest(), "good").as_deref(),
        Some(format!("good-1.0-1.{}", host_arch()).as_str())
    );
}

#[test]
fn paths_that_climb_out_of_the_tree_are_refused() {
    require_root!();
    let h = host();
    let before = h.snapshot();
    let err = failure(&h.pkglayer(&["install", "climber"]));
    assert!(
        err.contains(&format!(
            "package climber-1.0-1.{} ships /usr/share/../../etc/climbed, a path with `..`",
            host_arch()
        )),
        "{err}"
    );
    assert_eq!(h.snapshot(), before);

    // A file beneath the package's own symlink to /etc: never written through it.
    let err = failure(&h.pkglayer(&["install", "through-link"]));
    assert!(err.contains("through-link-1.0-1"), "{err}");
    assert!(err.contains("escape is a file, not a directory"), "{err}");
    assert_eq!(h.snapshot(), before);
}

#[test]
fn a_server_sending_more_than_declared_is_cut_off() {
    require_root!();
    let h = host();
    let before = h.snapshot();
    let rpm = www(&h).join(format!("Packages/good-1.0-1.{}.rpm", host_arch()));
    let mut bytes = std::fs::read(&rpm).unwrap();
    bytes.extend(std::iter::repeat_n(0u8, 1 << 20));
    std::fs::write(&rpm, bytes).unwrap();
    let err = failure(&h.pkglayer(&["install", "good"]));
    assert!(
        err.contains("is larger than the") && err.contains("bytes the repo metadata declares"),
        "{err}"
    );
    assert_eq!(h.snapshot(), before);
}

#[test]
fn a_huge_declared_size_is_refused_before_downloading() {
    require_root!();
    let h = host();
    let before = h.snapshot();
    edit_metadata(&www(&h), "primary", |xml| {
        let start = xml.find("<name>good</name>").unwrap();
        let at = start + xml[start..].find("<size package=\"").unwrap() + "<size package=\"".len();
        let end = at + xml[at..].find('"').unwrap();
        format!("{}{}{}", &xml[..at], 1u64 << 50, &xml[end..])
    })
    .unwrap();
    let err = failure(&h.pkglayer(&["install", "good"]));
    assert!(
        err.contains("the packages to download take 1073741824.0 MiB"),
        "{err}"
    );
    assert_eq!(h.server.count(".rpm"), 0, "nothing was downloaded");
    assert_eq!(h.snapshot(), before);
}

#[test]
fn a_hung_server_times_out() {
    require_root!();
    let h = host();
    let before = h.snapshot();
    std::fs::write(
        h.reposdir.join("test.repo"),
        format!(
            "[test]\nbaseurl={}\ngpgcheck=0\ntimeout=1\n",
            h.server.url("repo/")
        ),
    )
    .unwrap();
    h.server.break_path(".rpm", Fault::Hang);
    let started = Instant::now();
    let err = failure(&h.pkglayer(&["install", "good"]));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains("cannot download good-1.0-1"), "{err}");
    assert!(
        err.to_lowercase().contains("timeout") || err.contains("timed out"),
        "{err}"
    );
    assert_eq!(h.snapshot(), before);
}

#[test]
fn a_garbage_origin_is_named_and_left_alone() {
    require_root!();
    let h = host();
    let dirs = h.host.sysroot.deployment_dirs().unwrap();
    let origin = format!("{}.origin", dirs[0].display());
    // A key file (libostree itself refuses anything else), with nothing an origin needs.
    for garbage in [
        "[junk]\nnot=an origin\n",
        "[origin]\nbaserefspec=vendor:testos/x86_64/stable\n[packages]\nrequested-local=nonsense;\n",
    ] {
        std::fs::write(&origin, garbage).unwrap();
        let before = h.snapshot();
        let err = failure(&h.pkglayer(&["install", "good"]));
        assert!(err.contains(&origin), "{err}");
        assert!(
            err.contains("no [origin] refspec= or baserefspec= key")
                || err.contains("requested-local entry \"nonsense\" is not SHA256:NEVRA"),
            "{err}"
        );
        assert_eq!(h.snapshot(), before);
        let status = h.pkglayer(&["status"]);
        let shown = String::from_utf8_lossy(&status.stdout).to_string()
            + &String::from_utf8_lossy(&status.stderr);
        assert!(
            shown.contains(&origin),
            "status names the broken origin: {shown}"
        );
    }
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(path: &std::path::Path) -> anyhow::Result<Self> {
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256M", "pkglayer-test"])
            .arg(path))?;
        Ok(SmallDisk(path.to_path_buf()))
    }

    fn resize(&self, bytes: u64) {
        run(Command::new("mount")
            .arg("-o")
            .arg(format!("remount,size={bytes}"))
            .arg(&self.0))
        .unwrap();
    }

    fn used(&self) -> u64 {
        let out = run(Command::new("df")
            .args(["--output=used", "-B1"])
            .arg(&self.0))
        .unwrap();
        out.lines().nth(1).unwrap().trim().parse().unwrap()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Incompressible bytes, the same every run.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn a_full_disk_during_import_changes_nothing() {
    require_root!();
    const MIB: u64 = 1024 * 1024;
    // Declared first, dropped last: unmounted after the host is gone.
    let disk: std::cell::RefCell<Option<SmallDisk>> = Default::default();
    let h = RepoHost::with_sysroot_prepared(
        &base_packages("1"),
        |_| vec![TestPackage::new("bulky", "1.0-1").file("/usr/share/bulky/data", noise(6 << 20))],
        |path| {
            *disk.borrow_mut() = Some(SmallDisk::mount(path)?);
            Ok(())
        },
    );
    let disk = disk.borrow();
    let disk = disk.as_ref().unwrap();
    let before = h.snapshot();
    // Room for the download (6 MiB), not for the download and its import besides.
    disk.resize(disk.used() + 9 * MIB);
    let err = failure(&h.pkglayer(&["install", "bulky"]));
    // The import's check of the header's declared size, libostree's own reserve (min-free-space)
    // or the kernel's ENOSPC, whichever comes first.
    assert!(
        err.contains("bytes free where the repo is")
            || err.contains("No space left on device")
            || err.contains("min-free-space"),
        "{err}"
    );
    assert!(err.contains("Importing bulky-1.0-1"), "{err}");
    assert_eq!(h.snapshot(), before);
    h.fsck();

    disk.resize(disk.used() + 64 * MIB);
    support::ok(&h.pkglayer(&["install", "bulky"]));
    assert_eq!(
        std::fs::read(h.newest().join("usr/share/bulky/data")).unwrap(),
        noise(6 << 20)
    );
    assert_eq!(
        h.server.count(".rpm"),
        1,
        "the download was kept for the retry"
    );
    h.fsck();
}

#[test]
fn a_package_server_failing_in_every_way_changes_nothing() {
    require_root!();
    for (fault, expected) in [
        (Fault::Status(404), "HTTP 404"),
        (Fault::Status(500), "HTTP 500"),
        (Fault::Truncate, "transfer failed"),
    ] {
        let h = host();
        let before = h.snapshot();
        h.server.break_path(".rpm", fault);
        let err = failure(&h.pkglayer(&["install", "good"]));
        assert!(
            err.contains("cannot download good-1.0-1"),
            "{fault:?}: {err}"
        );
        assert!(err.contains(expected), "{fault:?}: {err}");
        assert_eq!(h.snapshot(), before, "{fault:?}");
    }
}

#[test]
fn malformed_filelists_are_refused_when_needed() {
    require_root!();
    let h = host();
    let before = h.snapshot();
    edit_metadata(&www(&h), "filelists", |xml| {
        xml.replace("</filelists>", "<package")
    })
    .unwrap();
    // Primary answers name requests; a path only filelists knows makes pkglayer read them.
    support::ok(&h.pkglayer(&["install", "--dry-run", "good"]));
    let err = failure(&h.pkglayer(&["install", "/usr/share/good/README"]));
    assert!(
        err.contains("the metadata of repo test is malformed"),
        "{err}"
    );
    assert!(err.contains("filelists.xml"), "{err}");
    assert_eq!(h.snapshot(), before);
}

/// A package with files an OSTree image cannot hold, one needing it, and one that is fine.
fn stray_packages() -> Vec<TestPackage> {
    vec![
        good(),
        TestPackage::new("strays", "1.0-1")
            .file("/usr/share/strays/README", "fine\n")
            .file("/tmp/strays/cache", "gone at the next boot\n")
            .dir("/srv/strays"),
        TestPackage::new("needs-strays", "1.0-1").requires("strays"),
    ]
}

#[test]
fn files_outside_the_image_are_refused_before_deploying() {
    require_root!();
    let h = RepoHost::serving(stray_packages());
    let before = h.snapshot();
    let refusal = format!("package strays-1.0-1.{} from repo test ships", host_arch());
    let check = |err: &str| {
        assert!(err.contains(&refusal), "{err}");
        assert!(err.contains("/tmp/strays/cache"), "{err}");
        assert!(err.contains("/srv/strays"), "a directory counts too: {err}");
        assert!(
            err.contains("outside the directories an OSTree image may hold"),
            "{err}"
        );
        assert!(!err.contains("/usr/share/strays"), "{err}");
    };

    // Without file lists (fetched only when a path needs them) the import refuses the package:
    // downloaded, never deployed.
    let err = failure(&h.pkglayer(&["install", "strays"]));
    assert!(
        err.contains(&format!("Importing strays-1.0-1.{}", host_arch())),
        "{err}"
    );
    assert!(
        err.contains("outside the directories an OSTree image may hold"),
        "{err}"
    );
    assert_eq!(h.snapshot(), before);
    h.fsck();

    // Once a path request brought the file lists, the metadata tells before any download, and the
    // dry run predicts the real run's refusal.
    let fetched = support::ok(&h.pkglayer(&["install", "--dry-run", "/usr/share/good/README"]));
    assert!(
        fetched.starts_with("Fetched the file lists of test"),
        "{fetched}"
    );
    let downloads = h.server.count(".rpm");
    check(&failure(&h.pkglayer(&[
        "install",
        "--dry-run",
        "needs-strays",
    ])));
    check(&failure(&h.pkglayer(&["install", "needs-strays"])));
    assert_eq!(
        h.server.count(".rpm"),
        downloads,
        "{:?}",
        h.server.requests()
    );
    assert_eq!(h.snapshot(), before);

    // The repo's other packages are fine.
    support::ok(&h.pkglayer(&["install", "--dry-run", "good"]));
}

#[test]
fn filelists_are_fetched_only_when_a_path_needs_them() {
    require_root!();
    let h = RepoHost::serving(stray_packages());
    support::ok(&h.pkglayer(&["install", "--download-only", "good"]));
    assert_eq!(h.server.count(".rpm"), 1);
    assert_eq!(
        h.server.count("filelists.xml.gz"),
        0,
        "{:?}",
        h.server.requests()
    );
    let cache = support::repo_cache_dir(&h.host.sysroot.path, "test");
    let cached_filelists = || {
        std::fs::read_dir(&cache)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.to_string_lossy().contains("filelists"))
    };
    assert_eq!(cached_filelists(), None);

    // A path primary metadata does not list brings them in, once, and the plan says so.
    let json: serde_json::Value = serde_json::from_str(&support::ok(&h.pkglayer(&[
        "install",
        "--dry-run",
        "--json",
        "/usr/share/good/README",
    ])))
    .unwrap();
    assert_eq!(json["filelists-fetched"], serde_json::json!(["test"]));
    assert_eq!(json["packages"][0]["name"], "good");
    let json: serde_json::Value = serde_json::from_str(&support::ok(&h.pkglayer(&[
        "install",
        "--dry-run",
        "--json",
        "/usr/share/good/README",
    ])))
    .unwrap();
    assert_eq!(json["filelists-fetched"], serde_json::json!([]));
    assert_eq!(h.server.count("filelists.xml.gz"), 1);

    // Broken in the cache: any read of it fails.
    std::fs::write(cached_filelists().unwrap(), "not XML").unwrap();
    // good is in the package cache: nothing to check, nothing read.
    support::ok(&h.pkglayer(&["install", "--dry-run", "good"]));
    // strays is not: its file list is read, and unreadable.
    let err = failure(&h.pkglayer(&["install", "--dry-run", "strays"]));
    assert!(
        err.contains("the metadata of repo test is malformed"),
        "{err}"
    );
    assert!(err.contains("filelists"), "{err}");
}
