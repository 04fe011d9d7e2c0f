//! Package scripts end to end: %pre/%post/%posttrans in shell and Lua, base file triggers, failures,
//! the sandbox's walls (no network, no writes into repo objects), on a base that carries real tools
//! copied from this machine (rpmlua, ldconfig, useradd) beside its static busybox shell.

use std::path::Path;
use std::process::Command;

mod support;

use pkglayer_testkit::{
    Script, TestPackage, base_packages, base_ref, host_arch, require_root, run,
};
use support::{failure, ok, state};

/// The test base plus real tools: rpm's Lua interpreter, the shadow tools, ldconfig with a
/// `%transfiletriggerin` on the library directories (as glibc has), recording what fired it.
fn base_with_tools(version: &str) -> Vec<TestPackage> {
    let mut packages = base_packages(version);
    packages.push(
        TestPackage::new("host-tools", &format!("1.0-{version}"))
            .host_programs(&["/usr/bin/rpmlua", "/usr/sbin/useradd", "/usr/sbin/groupadd"])
            .unwrap()
            // rpmlua reads rpm's configuration; empty files are enough.
            .file("/usr/lib/rpm/rpmrc", "")
            .file("/usr/lib/rpm/macros", "")
            // The rpm crate records `<lua>` as a Lua script's interpreter dependency (rpmbuild does
            // not); the package with rpm's Lua interpreter answers it.
            .provides("<lua>"),
    );
    packages.push(
        TestPackage::new("glibc-common", &format!("2.36-{version}"))
            .host_programs(&["/usr/sbin/ldconfig"])
            .unwrap()
            .file("/etc/ld.so.conf", "/usr/lib64\n")
            .script(
                Script::TransFileTriggerIn("/usr/lib64".into()),
                "cat >> /etc/ld-trigger.files\n/usr/sbin/ldconfig\n",
            ),
    );
    packages
}

fn libz() -> Vec<u8> {
    let path = std::fs::canonicalize("/lib/x86_64-linux-gnu/libz.so.1").unwrap();
    std::fs::read(path).unwrap()
}

fn packages(server_url: &str) -> Vec<TestPackage> {
    vec![
        TestPackage::new("scripted", "1.0-1")
            .file("/usr/share/scripted/README", "docs\n")
            .script(Script::Pre, "echo \"pre $1\" > /usr/share/scripted/pre")
            .script(Script::Post, "echo \"post $1\" > /etc/scripted.conf")
            .script(
                Script::PostTrans,
                "echo \"posttrans $1\" > /usr/share/scripted/posttrans",
            ),
        TestPackage::new("lua-scripted", "1.0-1").lua_script(
            Script::Post,
            "posix.mkdir(\"/usr/share/lua-made\")\n\
             local f = io.open(\"/usr/share/lua-made/note\", \"w\")\n\
             f:write(\"lua post, instances \" .. arg[2] .. \"\\n\")\n\
             f:close()\n",
        ),
        TestPackage::new("libdemo", "1.0-1").file("/usr/lib64/libdemo.so.1", libz()),
        TestPackage::new("failing", "1.0-1")
            .file("/usr/share/failing/README", "docs\n")
            .script(
                Script::Post,
                "echo 'about to fail'\necho 'on stderr' >&2\nexit 3",
            ),
        TestPackage::new("tamperer", "1.0-1").script(
            Script::Post,
            "echo tampered >> /usr/lib/os-release\necho tampered >> /etc/passwd",
        ),
        TestPackage::new("svc", "1.0-1")
            .file_with("/usr/share/svc/data", "svc data\n", 0o640, "svc", "svc")
            .script(
                Script::Pre,
                "useradd -r -d /var/lib/svc -s /sbin/nologin -c 'Service user' svc",
            ),
        TestPackage::new("other", "1.0-1").script(Script::Pre, "useradd -r -M other"),
        TestPackage::new("sysd", "1.0-1")
            .file(
                "/usr/lib/sysusers.d/sysd.conf",
                "# the daemon's account\nu sysd - \"Sysd daemon\" /var/lib/sysd\ng sysd-extra -\n",
            )
            .file_with("/usr/share/sysd/state", "x\n", 0o600, "sysd", "sysd-extra")
            // The account exists before %pre, as with rpm's %sysusers.
            .script(Script::Pre, "grep -q '^sysd:' /etc/passwd"),
        TestPackage::new("orphan-owner", "1.0-1").file_with(
            "/usr/share/orphan",
            "x\n",
            0o644,
            "nobody-made-me",
            "root",
        ),
        TestPackage::new("trigger-owner", "1.0-1").script(
            Script::TransFileTriggerIn("/usr/lib64".into()),
            "cat > /usr/share/trigger-owner.seen",
        ),
        TestPackage::new("networked", "1.0-1")
            .script(Script::Post, &format!("wget -q -O /tmp/out {server_url}")),
        // Records what its %post sees: a base file, its own file, another package's files and
        // script output, and whether its own earlier output is there.
        TestPackage::new("inspector", "1.0-1")
            .file("/usr/share/inspector/README", "inspector docs\n")
            .script(
                Script::Post,
                "seen=/usr/share/inspector/seen\n\
                 stale=no; test -e $seen && stale=yes\n\
                 {\n\
                 echo \"$(grep VERSION_ID= /usr/lib/os-release)\"\n\
                 echo \"own: $(cat /usr/share/inspector/README)\"\n\
                 echo \"scripted: $(ls /usr/share/scripted 2>/dev/null | tr '\\n' ' ')\"\n\
                 echo \"scripted.conf: $(cat /etc/scripted.conf 2>/dev/null)\"\n\
                 echo \"stale: $stale\"\n\
                 } > $seen\n",
            ),
    ]
}

type Host = support::host::RepoHost;

fn host() -> Host {
    Host::new(&base_with_tools("1"), |server| {
        packages(&server.url("from-the-sandbox"))
    })
}

/// Scratch left in the repo's tmp directory by script sandboxes.
fn sandbox_leftovers(h: &Host) -> Vec<String> {
    let tmp = h.host.sysroot.path.join("ostree/repo/tmp");
    std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("pkglayer-"))
        .collect()
}

/// The log line of a sandbox stacked on a deployment (not a checkout of the whole tree).
const STACKED: &str = "the scripts' tree is the deployment ";
/// The log line of a sandbox on a checkout of the whole tree.
const WHOLE: &str = "no deployment to stack the scripts' tree on";

/// Runs pkglayer with `-v`; returns its log, after checking the sandbox was stacked on a deployment.
fn stacked(h: &Host, args: &[&str]) -> String {
    let mut args = args.to_vec();
    args.push("-v");
    let output = h.pkglayer(&args);
    ok(&output);
    let log = support::stderr(&output);
    assert!(log.contains(STACKED) && !log.contains(WHOLE), "{log}");
    log
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn pre_post_and_posttrans_run_with_rpm_arguments() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "scripted"]));
    let root = h.newest();
    assert_eq!(read(root.join("usr/share/scripted/pre")), "pre 1\n");
    // /etc written by %post lands in the image's /usr/etc, and so in the deployment's /etc.
    assert_eq!(read(root.join("usr/etc/scripted.conf")), "post 1\n");
    assert_eq!(read(root.join("etc/scripted.conf")), "post 1\n");
    assert_eq!(
        read(root.join("usr/share/scripted/posttrans")),
        "posttrans 0\n"
    );
    let qa = h.host.sysroot.rpm_qa(&root).unwrap();
    assert!(
        qa.contains(&format!("scripted-1.0-1.{}", host_arch())),
        "{qa:?}"
    );
    assert!(sandbox_leftovers(&h).is_empty());
    h.fsck();
}

#[test]
fn lua_scripts_run_with_the_trees_rpmlua() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "lua-scripted"]));
    assert_eq!(
        read(h.newest().join("usr/share/lua-made/note")),
        "lua post, instances 1\n"
    );
}

#[test]
fn base_file_trigger_runs_for_a_layered_library() {
    require_root!();
    let h = host();
    // Nothing in /usr/lib64 is layered: the trigger stays quiet.
    ok(&h.pkglayer(&["install", "scripted"]));
    assert!(!h.newest().join("usr/etc/ld-trigger.files").exists());

    ok(&h.pkglayer(&["install", "libdemo"]));
    let root = h.newest();
    assert_eq!(
        read(root.join("usr/etc/ld-trigger.files")),
        "/usr/lib64/libdemo.so.1\n"
    );
    // The real ldconfig ran: its cache names the library by its soname, and it made the link.
    let cache = run(Command::new("ldconfig")
        .arg("-p")
        .arg("-C")
        .arg(root.join("usr/etc/ld.so.cache")))
    .unwrap();
    assert!(
        cache.contains("libz.so.1") && cache.contains("/usr/lib64/"),
        "{cache}"
    );
    assert_eq!(
        std::fs::read_link(root.join("usr/lib64/libz.so.1")).unwrap(),
        Path::new("libdemo.so.1")
    );
    h.fsck();
}

#[test]
fn failing_script_deploys_nothing_and_names_package_kind_and_status() {
    require_root!();
    let h = host();
    let before = h.deployments();
    let origin_before = h.host.sysroot.origin(0).unwrap();
    let err = failure(&h.pkglayer(&["install", "failing"]));
    assert!(
        err.contains(&format!(
            "the %post scriptlet of failing-1.0-1.{} failed with exit status 3",
            host_arch()
        )),
        "{err}"
    );
    assert!(
        err.contains("| about to fail") && err.contains("| on stderr"),
        "{err}"
    );
    assert!(err.contains("--skip-scripts=failing"), "{err}");
    assert_eq!(h.deployments(), before);
    assert_eq!(h.host.sysroot.origin(0).unwrap(), origin_before);
    assert!(sandbox_leftovers(&h).is_empty());
    h.fsck();

    // The documented way out: layer it without its scripts, remembered in the origin.
    ok(&h.pkglayer(&["install", "failing", "--skip-scripts=failing"]));
    assert!(h.newest().join("usr/share/failing/README").exists());
    let origin = h.host.sysroot.origin(0).unwrap();
    assert!(
        origin.contains("[pkglayer]\nskip-scripts=failing;"),
        "{origin}"
    );
}

#[test]
fn in_place_writes_to_base_files_never_reach_repo_objects() {
    require_root!();
    let h = host();
    let base_root = h.newest();
    let os_release = read(base_root.join("usr/lib/os-release"));
    let passwd = read(base_root.join("usr/etc/passwd"));
    ok(&h.pkglayer(&["install", "tamperer"]));
    let root = h.newest();
    // The new tree has the scripts' edits…
    assert_eq!(
        read(root.join("usr/lib/os-release")),
        format!("{os_release}tampered\n")
    );
    assert_eq!(
        read(root.join("usr/etc/passwd")),
        format!("{passwd}tampered\n")
    );
    // …while the base deployment, hardlinked to the same repo objects, is untouched.
    assert_eq!(read(base_root.join("usr/lib/os-release")), os_release);
    assert_eq!(read(base_root.join("usr/etc/passwd")), passwd);
    h.fsck();
}

#[test]
fn scripts_cannot_reach_the_network() {
    require_root!();
    let h = host();
    let before = h.deployments();
    let err = failure(&h.pkglayer(&["install", "networked"]));
    assert!(
        err.contains("the %post scriptlet of networked-1.0-1")
            && err.contains("failed with exit status 1"),
        "{err}"
    );
    // The server on this machine's loopback saw pkglayer fetch the package, never the script.
    let requests = h.server.requests();
    assert!(
        requests.iter().any(|r| r.contains("networked-1.0-1")),
        "{requests:?}"
    );
    assert!(
        !requests.iter().any(|r| r.contains("from-the-sandbox")),
        "{requests:?}"
    );
    assert_eq!(h.deployments(), before);
}

/// `name`'s entry of the deployment's passwd or group file, split on `:`.
fn account(root: &Path, file: &str, name: &str) -> Vec<String> {
    read(root.join("usr/etc").join(file))
        .lines()
        .map(|line| line.split(':').map(str::to_string).collect::<Vec<_>>())
        .find(|fields| fields[0] == name)
        .unwrap_or_else(|| panic!("no {name} in {file}"))
}

fn owner(path: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.uid(), meta.gid())
}

#[test]
fn useradd_in_pre_keeps_its_ids_across_reinstalls_and_upgrades() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "svc"]));
    let root = h.newest();
    let svc = account(&root, "passwd", "svc");
    assert_eq!(svc[4..], ["Service user", "/var/lib/svc", "/sbin/nologin"]);
    let (uid, gid): (u32, u32) = (svc[2].parse().unwrap(), svc[3].parse().unwrap());
    assert_eq!(account(&root, "group", "svc")[2], gid.to_string());
    assert_eq!((uid, gid), (999, 999), "the first free system IDs");
    // The package's file belongs to the user its own %pre made.
    assert_eq!(owner(&root.join("usr/share/svc/data")), (uid, gid));

    // Gone, then another package creates a user: it must not inherit svc's IDs.
    ok(&h.pkglayer(&["uninstall", "svc"]));
    ok(&h.pkglayer(&["install", "other"]));
    let other = account(&h.newest(), "passwd", "other");
    assert_ne!(other[2], uid.to_string(), "{other:?}");
    assert_ne!(other[3], gid.to_string(), "{other:?}");

    // Back again: the same IDs as the first time.
    ok(&h.pkglayer(&["install", "svc"]));
    let again = account(&h.newest(), "passwd", "svc");
    assert_eq!(again[2..4], svc[2..4]);

    // A new base: every layered user keeps its IDs.
    h.host
        .vendor
        .publish(&base_ref(), "2", &base_with_tools("2"))
        .unwrap();
    ok(&h.pkglayer(&["upgrade"]));
    let root = h.newest();
    assert!(read(root.join("usr/lib/os-release")).contains("VERSION_ID=2"));
    assert_eq!(account(&root, "passwd", "svc")[2..4], svc[2..4]);
    assert_eq!(account(&root, "passwd", "other")[2..4], other[2..4]);
    assert_eq!(owner(&root.join("usr/share/svc/data")), (uid, gid));
    h.fsck();
}

#[test]
fn sysusers_fragments_create_accounts_before_scripts() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "sysd"]));
    let root = h.newest();
    let sysd = account(&root, "passwd", "sysd");
    assert_eq!(
        sysd[4..],
        ["Sysd daemon", "/var/lib/sysd", "/usr/sbin/nologin"]
    );
    let uid: u32 = sysd[2].parse().unwrap();
    assert_eq!(account(&root, "group", "sysd")[2], sysd[3]);
    let extra: u32 = account(&root, "group", "sysd-extra")[2].parse().unwrap();
    assert_eq!(owner(&root.join("usr/share/sysd/state")), (uid, extra));
    // The allocation is the machine's, kept in the stateroot's /var.
    let ids = read(state(&h.host.sysroot.path).id_allocations());
    assert!(ids.contains(&format!("u sysd {uid}\n")), "{ids}");
    assert!(ids.contains(&format!("g sysd-extra {extra}\n")), "{ids}");
}

#[test]
fn files_owned_by_an_account_nobody_creates_are_refused() {
    require_root!();
    let h = host();
    let before = h.deployments();
    let err = failure(&h.pkglayer(&["install", "orphan-owner"]));
    assert!(
        err.contains(&format!(
            "package orphan-owner-1.0-1.{} ships /usr/share/orphan owned by user nobody-made-me",
            host_arch()
        )),
        "{err}"
    );
    assert_eq!(h.deployments(), before);
}

#[test]
fn a_layered_trigger_sees_the_base_files_it_matches() {
    require_root!();
    let h = host();
    ok(&h.pkglayer(&["install", "trigger-owner"]));
    let seen = read(h.newest().join("usr/share/trigger-owner.seen"));
    assert!(
        seen.lines().any(|l| l == "/usr/lib64/ld-linux-x86-64.so.2"),
        "{seen}"
    );
}

#[test]
fn identical_script_runs_are_reused_until_cleanup() {
    require_root!();
    let h = host();
    // Files and links with their checksums, but the rpmdb's (rpm records the install time).
    let list = |commit: &str| -> Vec<String> {
        h.host
            .sysroot
            .ostree(&["ls", "-R", "-C", commit])
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('d') && !l.contains("/usr/share/rpm/"))
            .map(str::to_string)
            .collect()
    };
    ok(&h.pkglayer(&["install", "-v", "scripted"]));
    let first = list(&h.deployments()[0]);
    ok(&h.pkglayer(&["uninstall", "scripted"]));
    let output = h.pkglayer(&["install", "-v", "scripted"]);
    ok(&output);
    let log = support::stderr(&output);
    assert!(log.contains("ran on this very tree before"), "{log}");
    // The same tree as the first time, to the commit's content.
    let root = h.newest();
    assert_eq!(read(root.join("usr/etc/scripted.conf")), "post 1\n");
    assert_eq!(read(root.join("usr/share/scripted/pre")), "pre 1\n");
    assert_eq!(list(&h.deployments()[0]), first);

    let cleaned = ok(&h.pkglayer(&["cleanup", "--cache"]));
    assert!(cleaned.contains("1 script results"), "{cleaned}");
    ok(&h.pkglayer(&["uninstall", "scripted"]));
    let output = h.pkglayer(&["install", "-v", "scripted"]);
    ok(&output);
    assert!(!support::stderr(&output).contains("ran on this very tree before"));
    h.fsck();
}

#[test]
fn scripts_see_their_tree_whichever_deployment_lies_beneath() {
    require_root!();
    let h = host();
    // On the base's own deployment: the sandbox adds the layered files to it.
    stacked(&h, &["install", "inspector"]);
    assert_eq!(
        read(h.newest().join("usr/share/inspector/seen")),
        "VERSION_ID=1\nown: inspector docs\nscripted: \nscripted.conf: \nstale: no\n"
    );

    // With another package: its files are seen (and its %pre's output if it ran first), the output of
    // its %posttrans not yet.
    stacked(&h, &["install", "scripted"]);
    let root = h.newest();
    let seen = read(root.join("usr/share/inspector/seen"));
    assert!(
        seen.starts_with("VERSION_ID=1\nown: inspector docs\nscripted: README "),
        "{seen}"
    );
    assert!(
        seen.ends_with("stale: no\n") && !seen.contains("posttrans"),
        "{seen}"
    );
    assert_eq!(
        read(root.join("usr/share/scripted/posttrans")),
        "posttrans 0\n"
    );

    // The base's deployment is gone; both left are layered, with files and script output the next
    // tree lacks: whiteouts hide them from the scripts.
    ok(&h.pkglayer(&["cleanup", "--cache"]));
    stacked(&h, &["uninstall", "scripted"]);
    let root = h.newest();
    assert_eq!(
        read(root.join("usr/share/inspector/seen")),
        "VERSION_ID=1\nown: inspector docs\nscripted: \nscripted.conf: \nstale: no\n"
    );
    assert!(!root.join("usr/share/scripted").exists());

    // A new base: stacked on a deployment of the old one, the scripts see the new one.
    h.host
        .vendor
        .publish(&base_ref(), "2", &base_with_tools("2"))
        .unwrap();
    stacked(&h, &["upgrade"]);
    let root = h.newest();
    assert!(read(root.join("usr/lib/os-release")).contains("VERSION_ID=2"));
    assert_eq!(
        read(root.join("usr/share/inspector/seen")),
        "VERSION_ID=2\nown: inspector docs\nscripted: \nscripted.conf: \nstale: no\n"
    );

    // In-place writes to a file of the deployment beneath reach neither it nor a repo object.
    let below = h.newest();
    let os_release = read(below.join("usr/lib/os-release"));
    stacked(&h, &["install", "tamperer"]);
    assert_eq!(
        read(h.newest().join("usr/lib/os-release")),
        format!("{os_release}tampered\n")
    );
    assert_eq!(read(below.join("usr/lib/os-release")), os_release);
    // Nothing of the sandboxes is left: their delta checkouts were scratch.
    assert!(sandbox_leftovers(&h).is_empty());
    h.fsck();
}

#[test]
fn a_deployment_that_differs_from_its_commit_is_not_stacked_on() {
    require_root!();
    let h = host();
    // Something wrote into the deployment's usr (it is not what its commit holds any more).
    let base_root = h.newest();
    std::fs::write(base_root.join("usr/stray"), "not in the commit\n").unwrap();
    let output = h.pkglayer(&["install", "-v", "scripted"]);
    ok(&output);
    let log = support::stderr(&output);
    assert!(log.contains(WHOLE) && !log.contains(STACKED), "{log}");
    let root = h.newest();
    assert_eq!(read(root.join("usr/share/scripted/pre")), "pre 1\n");
    assert_eq!(read(root.join("usr/etc/scripted.conf")), "post 1\n");
    assert!(!root.join("usr/stray").exists());
    assert!(sandbox_leftovers(&h).is_empty());
    h.fsck();
}
