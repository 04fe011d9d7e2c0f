//! Package payloads, real and hostile: owners of files and symlinks in the deployment, accounts
//! made by scripts on a base that keeps its own in `/usr/lib`, tmpfiles.d lines that the real
//! `systemd-tmpfiles` reads back, `/usr/local`, special files, setuid files, bad names, payloads
//! that lie about their size or disagree with their header, and every payload compression. Each
//! refused package names itself and the path, and leaves deployments, origins, refs and the repo's
//! objects as they were (`ostree fsck` clean).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

use pkglayer_testkit::payload_cases::{Compression, CpioEntry, Crafted};
use pkglayer_testkit::{Script, TestPackage, base_packages, host_arch, require_root};
use support::{failure, ok};

type Host = support::host::RepoHost;

fn nevra(name: &str) -> String {
    format!("{name}-1.0-1.{}", host_arch())
}

/// Owner of `path` itself (a symlink is not followed).
fn owner(path: &Path) -> (u32, u32) {
    let meta =
        std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (meta.uid(), meta.gid())
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The ID field of `name`'s entry in the passwd or group file at `path`, if it has one.
fn id_in(path: &Path, name: &str) -> Option<u32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields[0] == name)
        .map(|fields| fields[2].parse().unwrap())
}

/// Files in the repo's `objects/`: a refused import writes none.
fn object_count(h: &Host) -> usize {
    fn count(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().path())
                    .map(|p| if p.is_dir() { count(&p) } else { 1 })
                    .sum()
            })
            .unwrap_or(0)
    }
    count(&h.host.sysroot.path.join("ostree/repo/objects"))
}

/// Installs the local RPM at `rpm`, which must be refused; returns the error after checking that
/// nothing changed: deployments, origins, refs, the repo's objects, and `ostree fsck`.
fn refused(h: &Host, rpm: &Path) -> String {
    let before = (h.snapshot(), object_count(h));
    let err = failure(&h.pkglayer(&["install", rpm.to_str().unwrap()]));
    assert_eq!((h.snapshot(), object_count(h)), before, "{err}");
    h.fsck();
    err
}

fn host() -> Host {
    Host::serving(vec![
        TestPackage::new("owned", "1.0-1")
            .file(
                "/usr/lib/sysusers.d/owned.conf",
                "u svc - \"Service\" /var/lib/svc\n",
            )
            .file_with("/etc/owned/secret.conf", "secret\n", 0o640, "svc", "svc")
            .file_with("/usr/share/owned/data", "data\n", 0o644, "svc", "svc")
            .symlink_with("/etc/owned/current", "secret.conf", "svc", "svc")
            .symlink_with("/usr/share/owned/link", "data", "svc", "svc")
            .symlink_with("/usr/share/owned/bin-link", "data", "bin", "bin"),
        TestPackage::new("spaced", "1.0-1")
            .dir("/var/lib/my app")
            .dir("/var/lib/it's \"quoted\" 100%")
            .symlink("/var/lib/link with space", "../lib/my app")
            .file("/opt/My Vendor/bin/tool", "#!/bin/sh\n"),
        TestPackage::new("localish", "1.0-1")
            .file("/usr/share/localish/README", "x\n")
            .executable("/usr/local/bin/localish", "#!/bin/sh\n"),
    ])
}

#[test]
fn files_and_symlinks_owned_by_an_account_keep_its_ids_in_the_deployment() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "owned"]));
    let root = h.newest();
    let uid = id_in(&root.join("usr/etc/passwd"), "svc").expect("svc was created");
    let gid = id_in(&root.join("usr/etc/group"), "svc").expect("svc's group was created");
    for path in [
        "usr/etc/owned/secret.conf",
        "usr/etc/owned/current",
        "usr/share/owned/data",
        "usr/share/owned/link",
        // The deployment's /etc, as ostree made it from /usr/etc.
        "etc/owned/secret.conf",
        "etc/owned/current",
    ] {
        assert_eq!(owner(&root.join(path)), (uid, gid), "{path}");
    }
    // An account of the base: its IDs at once.
    assert_eq!(owner(&root.join("usr/share/owned/bin-link")), (1, 1));
    h.fsck();
}

/// The test base with the real shadow tools, keeping its system accounts in `/usr/lib/passwd` and
/// `/usr/lib/group` (nss-altfiles, as Fedora's bases do); `/etc` has only root's.
fn altfiles_base() -> Vec<TestPackage> {
    let mut packages: Vec<TestPackage> = base_packages("1")
        .into_iter()
        .filter(|p| p.name != "setup")
        .collect();
    packages.push(
        TestPackage::new("setup", "2.14-1.testos")
            .arch("noarch")
            .file("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
            .file("/etc/group", "root:x:0:\n")
            .file("/etc/shadow", "root:*::0:99999:7:::\n")
            .file("/etc/gshadow", "root:::\n")
            .file(
                "/usr/lib/passwd",
                "bin:x:1:1:bin:/bin:/sbin/nologin\nnobody:x:65534:65534::/:/sbin/nologin\n",
            )
            .file("/usr/lib/group", "bin:x:1:\nwheel:x:10:\nnobody:x:65534:\n"),
    );
    packages.push(
        TestPackage::new("host-tools", "1.0-1")
            .host_programs(&[
                "/usr/sbin/useradd",
                "/usr/sbin/groupadd",
                "/usr/sbin/usermod",
            ])
            .unwrap(),
    );
    packages
}

#[test]
fn accounts_made_by_scripts_go_where_the_base_keeps_its_system_accounts() {
    require_root!();
    let h = Host::new(&altfiles_base(), |_| {
        vec![
            TestPackage::new("daemon", "1.0-1")
                .file_with("/usr/share/daemon/state", "x\n", 0o600, "daemon", "daemon")
                .script(
                    Script::Pre,
                    "useradd -r -M -s /sbin/nologin daemon\nusermod -a -G wheel daemon",
                ),
        ]
    });
    ok(&h.pkglayer(&["install", "daemon"]));
    let root = h.newest();
    let uid = id_in(&root.join("usr/lib/passwd"), "daemon").expect("daemon in /usr/lib/passwd");
    let gid = id_in(&root.join("usr/lib/group"), "daemon").expect("daemon in /usr/lib/group");
    assert_eq!(id_in(&root.join("usr/etc/passwd"), "daemon"), None);
    assert_eq!(id_in(&root.join("usr/etc/group"), "daemon"), None);
    assert_eq!(
        read(root.join("usr/etc/passwd")),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
    // The base's own entries are still there, once.
    let lib_passwd = read(root.join("usr/lib/passwd"));
    assert_eq!(lib_passwd.matches("bin:x:1:1:").count(), 1, "{lib_passwd}");
    // A base group the script added the user to keeps the change, in the base's file.
    let lib_group = read(root.join("usr/lib/group"));
    assert!(lib_group.contains("\nwheel:x:10:daemon\n"), "{lib_group}");
    assert_eq!(owner(&root.join("usr/share/daemon/state")), (uid, gid));
    // Its password entry stays in /etc/shadow, where the shadow tools keep it.
    assert!(read(root.join("usr/etc/shadow")).contains("daemon:"));
    h.fsck();
}

#[test]
fn tmpfiles_lines_for_paths_with_spaces_and_quotes_work_with_systemd_tmpfiles() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "spaced"]));
    let conf = h.newest().join("usr/lib/tmpfiles.d/pkglayer-spaced.conf");
    let machine = tempfile::tempdir().unwrap();
    let output = Command::new("systemd-tmpfiles")
        .arg("--create")
        .arg(format!("--root={}", machine.path().display()))
        .arg(&conf)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{said}\n{}", read(&conf));
    assert!(said.is_empty(), "{said}\n{}", read(&conf));
    let root = machine.path();
    assert!(root.join("var/lib/my app").is_dir());
    assert!(root.join("var/lib/it's \"quoted\" 100%").is_dir());
    assert_eq!(
        std::fs::read_link(root.join("var/lib/link with space")).unwrap(),
        PathBuf::from("../lib/my app")
    );
    assert_eq!(
        std::fs::read_link(root.join("opt/My Vendor")).unwrap(),
        PathBuf::from("/usr/lib/opt/My Vendor")
    );
    assert!(h.newest().join("usr/lib/opt/My Vendor/bin/tool").is_file());
}

#[test]
fn a_package_with_usr_local_files_is_refused_before_download() {
    require_root!();
    let h = host();
    let before = h.snapshot();
    // Without file lists the import refuses it, after the download, before anything is deployed.
    let err = failure(&h.pkglayer(&["install", "localish"]));
    assert!(
        err.contains(&format!(
            "Importing {0}: package {0} ships /usr/local/bin/localish",
            nevra("localish")
        )),
        "{err}"
    );
    assert_eq!(h.snapshot(), before);
    let downloads = h.server.count(".rpm");
    // Once a path request brought the file lists (they are fetched only when needed), planning
    // refuses it before any download.
    let out = support::ok(&h.pkglayer(&["install", "--dry-run", "/usr/share/owned/data"]));
    assert!(out.starts_with("Fetched the file lists of test"), "{out}");
    let err = failure(&h.pkglayer(&["install", "localish"]));
    assert!(
        err.contains(&format!(
            "package {} from repo test ships /usr/local/bin/localish",
            nevra("localish")
        )),
        "{err}"
    );
    assert!(
        err.contains("but /usr/local, which is the machine's"),
        "{err}"
    );
    assert_eq!(h.server.count(".rpm"), downloads, "nothing was downloaded");
    assert_eq!(h.snapshot(), before);

    // The same package as a local file: refused by the import.
    let rpm = TestPackage::new("localish", "1.0-1")
        .executable("/usr/local/bin/localish", "#!/bin/sh\n")
        .write_to(h.host.dir())
        .unwrap();
    let err = refused(&h, &rpm);
    assert!(
        err.contains(&format!(
            "package {} ships /usr/local/bin/localish",
            nevra("localish")
        )),
        "{err}"
    );
    // The base's /usr/local is untouched by anything pkglayer wrote.
    assert!(!h.newest().join("usr/lib/usrlocal").exists());
}

/// `package` with its file `path` turned into a special file of type `mode` (`S_IF*`), empty.
fn special(h: &Host, name: &str, path: &str, mode: u32) -> PathBuf {
    let package = TestPackage::new(name, "1.0-1")
        .file("/usr/share/fine", "fine\n")
        .file(path, "");
    let mut crafted = Crafted::new(&package).unwrap();
    crafted.set_header_mode(path, mode | 0o644).unwrap();
    crafted.entry(path).mode = mode | 0o644;
    crafted.write_to(h.host.dir()).unwrap()
}

#[test]
fn device_nodes_fifos_and_sockets_are_refused() {
    require_root!();
    let h = host();
    for (name, path, mode, what) in [
        (
            "chardev",
            "/usr/share/null",
            0o020000,
            "a character device node",
        ),
        (
            "blockdev",
            "/usr/share/disk",
            0o060000,
            "a block device node",
        ),
        ("fifo", "/usr/share/pipe", 0o010000, "a FIFO"),
        ("socket", "/usr/share/sock", 0o140000, "a socket"),
    ] {
        let rpm = special(&h, name, path, mode);
        let err = refused(&h, &rpm);
        assert!(
            err.contains(&format!(
                "package {} ships {path}, {what}, which an OSTree image cannot hold",
                nevra(name)
            )),
            "{err}"
        );
        assert!(err.contains("made at boot"), "{err}");
    }
}

#[test]
fn setuid_files_are_kept_and_shown_in_the_dry_run() {
    require_root!();
    let h = host();
    let rpm = TestPackage::new("suid", "1.0-1")
        .file_with("/usr/bin/suid-tool", "#!/bin/sh\n", 0o4755, "root", "root")
        .file_with("/usr/bin/sgid-tool", "#!/bin/sh\n", 0o2755, "root", "bin")
        .executable("/usr/bin/plain-tool", "#!/bin/sh\n")
        .write_to(h.host.dir())
        .unwrap();
    let path = rpm.to_str().unwrap();
    let said = ok(&h.pkglayer(&["install", "--dry-run", path]));
    assert!(
        said.contains(&format!(
            "Setuid and setgid files:\n  /usr/bin/sgid-tool  setgid bin  2755  {n}\n  /usr/bin/suid-tool  setuid root  4755  {n}\n",
            n = nevra("suid")
        )),
        "{said}"
    );
    assert!(!said.contains("plain-tool"), "{said}");
    ok(&h.pkglayer(&["install", path]));
    let root = h.newest();
    let mode = |p: &str| {
        std::fs::metadata(root.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("usr/bin/suid-tool"), 0o4755);
    assert_eq!(mode("usr/bin/sgid-tool"), 0o2755);
    assert_eq!(owner(&root.join("usr/bin/sgid-tool")), (0, 1));
}

#[test]
fn names_that_are_not_utf8_are_refused() {
    require_root!();
    let h = host();
    let package =
        TestPackage::new("badname", "1.0-1").file("/usr/share/badname/PLACEHOLDER", "x\n");
    let rpm = Crafted::new(&package)
        .unwrap()
        .patch(b"PLACEHOLDER", b"PLACE\xffHOLDE")
        .write_to(h.host.dir())
        .unwrap();
    let err = refused(&h, &rpm);
    assert!(
        err.contains(&format!(
            "package {} ships /usr/share/badname/PLACE\u{fffd}HOLDE, a name that is not UTF-8",
            nevra("badname")
        )),
        "{err}"
    );
}

#[test]
fn names_that_are_not_utf8_in_a_header_declaring_utf8_are_refused() {
    require_root!();
    let h = host();
    let package =
        TestPackage::new("badname", "1.0-1").file("/usr/share/badname/PLACEHOLDER", "x\n");
    let rpm = Crafted::new(&package)
        .unwrap()
        .keep_encoding()
        .patch(b"PLACEHOLDER", b"PLACE\xffHOLDE")
        .write_to(h.host.dir())
        .unwrap();
    let err = refused(&h, &rpm);
    assert!(
        err.contains(&format!(
            "package {} is refused: its header's file list cannot be read: invalid UTF-8 in tag",
            nevra("badname")
        )),
        "{err}"
    );
    assert!(err.contains("file names must be UTF-8"), "{err}");
}

#[test]
fn names_that_hold_a_newline_are_refused() {
    require_root!();
    let h = host();
    let rpm = TestPackage::new("newline", "1.0-1")
        .file("/usr/share/newline/one\ntwo", "x\n")
        .write_to(h.host.dir())
        .unwrap();
    let err = refused(&h, &rpm);
    assert!(
        err.contains(&format!(
            "package {} ships /usr/share/newline/one\\ntwo, a name that is not UTF-8 or holds a newline",
            nevra("newline")
        )),
        "{err}"
    );
}

#[test]
fn owner_names_no_account_can_have_are_refused() {
    require_root!();
    let h = host();
    // Written into a tmpfiles.d line as it is, this owner would add a line of its own.
    let rpm = TestPackage::new("injector", "1.0-1")
        .file("/usr/share/injector/README", "x\n")
        .dir_with(
            "/var/lib/injector",
            0o755,
            "root - -\nL+ /etc/shadow - - - - /dev/null\n#",
            "root",
        )
        .write_to(h.host.dir())
        .unwrap();
    let err = refused(&h, &rpm);
    assert!(
        err.contains(&format!(
            "package {} ships /var/lib/injector, owned by the user root - -\\nL+ /etc/shadow",
            nevra("injector")
        )),
        "{err}"
    );
    assert!(err.contains("a name no account can have"), "{err}");
}

#[test]
fn a_payload_expanding_beyond_its_declared_size_stops_there() {
    require_root!();
    let h = host();
    // The header lists a file of 5 zero bytes (its digest matches them); the archive's entry for it
    // holds 1 GiB of zeros, a few hundred KiB compressed.
    let package = TestPackage::new("bomb", "1.0-1").file("/usr/share/bomb/zeros", vec![0u8; 5]);
    let mut crafted = Crafted::new(&package)
        .unwrap()
        .compression(Compression::Zstd);
    let entry = crafted.entry("/usr/share/bomb/zeros");
    entry.data = vec![0u8; 1 << 30];
    entry.size = 1 << 30;
    let rpm = crafted.write_to(h.host.dir()).unwrap();
    assert!(std::fs::metadata(&rpm).unwrap().len() < 1 << 20);
    let started = std::time::Instant::now();
    let err = refused(&h, &rpm);
    assert!(
        err.contains(&format!(
            "package {} is refused: its payload holds /usr/share/bomb/zeros with 1073741824 bytes rather than its header declares",
            nevra("bomb")
        )),
        "{err}"
    );
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}

#[test]
fn a_header_declaring_a_huge_size_is_refused_before_anything_is_written() {
    require_root!();
    let h = host();
    let package = TestPackage::new("huge", "1.0-1").file("/usr/share/huge/data", "small\n");
    let mut crafted = Crafted::new(&package).unwrap();
    crafted
        .set_header_size("/usr/share/huge/data", 1 << 50)
        .unwrap();
    let rpm = crafted.write_to(h.host.dir()).unwrap();
    let err = refused(&h, &rpm);
    assert!(
        err.contains(&format!(
            "package {} declares 1125899906842624 bytes of files, more than the",
            nevra("huge")
        )),
        "{err}"
    );
}

/// `disagree` package, edited by `edit`, then installed: the refusal.
fn disagreeing(h: &Host, edit: impl FnOnce(&mut Crafted)) -> String {
    let package = TestPackage::new("disagree", "1.0-1")
        .file("/usr/share/disagree/a", "aaaa\n")
        .file("/usr/share/disagree/b", "bbbb\n");
    let mut crafted = Crafted::new(&package).unwrap();
    edit(&mut crafted);
    let rpm = crafted.write_to(h.host.dir()).unwrap();
    refused(h, &rpm)
}

#[test]
fn an_archive_entry_the_header_does_not_list_is_refused() {
    require_root!();
    let h = host();
    let err = disagreeing(&h, |c| {
        c.entries.push(CpioEntry::new(
            "./usr/bin/smuggled",
            0o104755,
            "#!/bin/sh\n",
        ))
    });
    assert!(
        err.contains(&format!(
            "package {} is refused: its payload holds /usr/bin/smuggled, which its header does not list",
            nevra("disagree")
        )),
        "{err}"
    );
}

#[test]
fn a_file_the_header_lists_and_the_archive_lacks_is_refused() {
    require_root!();
    let h = host();
    let err = disagreeing(&h, |c| {
        c.entries.retain(|e| !e.name.ends_with(b"/b"));
    });
    assert!(
        err.contains(&format!(
            "package {} is refused: its payload lacks /usr/share/disagree/b, which its header lists",
            nevra("disagree")
        )),
        "{err}"
    );
}

#[test]
fn an_archive_entry_of_another_size_is_refused() {
    require_root!();
    let h = host();
    let err = disagreeing(&h, |c| {
        let entry = c.entry("/usr/share/disagree/b");
        entry.data = b"bbbb and more\n".to_vec();
        entry.size = entry.data.len() as u32;
    });
    assert!(
        err.contains(
            "its payload holds /usr/share/disagree/b with 14 bytes rather than its header declares"
        ),
        "{err}"
    );
}

#[test]
fn an_archive_entry_of_another_mode_is_refused() {
    require_root!();
    let h = host();
    let err = disagreeing(&h, |c| c.entry("/usr/share/disagree/a").mode = 0o104755);
    assert!(
        err.contains(
            "its payload holds /usr/share/disagree/a with other permission bits than its header declares"
        ),
        "{err}"
    );
}

#[test]
fn payloads_in_every_compression_are_layered() {
    require_root!();
    let h = host();
    for compression in Compression::ALL {
        let name = format!("packed-{}", compression.name());
        let package = TestPackage::new(&name, "1.0-1")
            .file(&format!("/usr/share/{name}/data"), name.repeat(1000))
            .hardlinks(
                &[&format!("/usr/bin/{name}"), &format!("/usr/bin/{name}-too")],
                "#!/bin/sh\n",
            );
        let rpm = Crafted::new(&package)
            .unwrap()
            .compression(compression)
            .write_to(h.host.dir())
            .unwrap();
        ok(&h.pkglayer(&["install", rpm.to_str().unwrap()]));
        let root = h.newest();
        assert_eq!(
            read(root.join(format!("usr/share/{name}/data"))),
            name.repeat(1000)
        );
        assert_eq!(
            read(root.join(format!("usr/bin/{name}-too"))),
            "#!/bin/sh\n"
        );
    }
    h.fsck();
}
