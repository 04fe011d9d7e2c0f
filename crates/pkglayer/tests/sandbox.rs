//! The script sandbox: what real packages' scripts need works (a throwaway `/var`, `systemctl`
//! offline, `%post -e`), and what hostile scripts try fails inside the sandbox, fails the layering
//! naming package and script, and leaves the machine as it was (clock, modules, devices, disk,
//! processes), the deployments and the repo too.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

mod support;

use pkglayer_testkit::sandbox_cases::{
    BASE_MACRO, add_to_repo, expanded_post_package, sandbox_base,
};
use pkglayer_testkit::{TestPackage, base_packages, host_arch, require_root, run};
use support::host::RepoHost;
use support::{failure, ok};

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn nevra(name: &str) -> String {
    format!("{name}-1.0-1.{}", host_arch())
}

/// Runs pkglayer on the host with `env`, failing the test (not hanging it) when it takes longer
/// than `limit`.
fn pkglayer_within(h: &RepoHost, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let mut command = h.command(args);
    for (key, value) in env {
        command = command.env(key, value);
    }
    let mut child = command.spawn();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "pkglayer {args:?} was still running after {limit:?}: {}",
                support::said(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// What a script must never change on the machine: loaded modules, device nodes, and whether a
/// process of a given command line runs.
#[derive(Debug, PartialEq, Eq)]
struct Machine {
    modules: Vec<String>,
    devices: Vec<String>,
}

impl Machine {
    fn now() -> Self {
        // A kernel without module support has no /proc/modules.
        let mut modules: Vec<String> = std::fs::read_to_string("/proc/modules")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').next().map(str::to_string))
            .collect();
        modules.sort();
        let mut devices: Vec<String> = std::fs::read_dir("/dev")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        devices.sort();
        Machine { modules, devices }
    }
}

/// Processes of this machine whose command line holds `text`.
fn processes_with(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap() {
        let entry = entry.unwrap();
        if !entry
            .file_name()
            .to_string_lossy()
            .chars()
            .all(|c| c.is_ascii_digit())
        {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(text) {
                found.push(format!(
                    "{}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

/// Layers `package` expecting a failure; checks the deployments, origins, refs, the repo and the
/// machine are as they were, and the clock kept its pace. Returns the error.
fn refused(h: &RepoHost, package: &str, env: &[(&str, &str)]) -> String {
    // Downloaded and imported first: the run that fails must leave even the repo's refs alone.
    ok(&h.pkglayer(&["install", "--download-only", package]));
    let before = h.snapshot();
    let machine = Machine::now();
    let (wall, steady) = (SystemTime::now(), Instant::now());
    let err = failure(&pkglayer_within(
        h,
        &["install", package],
        env,
        Duration::from_secs(120),
    ));
    let wall_elapsed = SystemTime::now()
        .duration_since(wall)
        .expect("the clock did not go back");
    let drift = wall_elapsed.as_secs_f64() - steady.elapsed().as_secs_f64();
    assert!(drift.abs() < 2.0, "the clock moved by {drift} s");
    assert_eq!(Machine::now(), machine);
    assert_eq!(h.snapshot(), before);
    assert!(
        err.contains("nothing was deployed"),
        "the hint says nothing was deployed: {err}"
    );
    h.fsck();
    err
}

/// The error of a script that failed inside the sandbox: the slot, the package and the status.
fn failed_with(err: &str, package: &str, status: i32) {
    assert!(
        err.contains(&format!(
            "the %post scriptlet of {} failed with exit status {status}",
            nevra(package)
        )),
        "{err}"
    );
}

// Real packages.

#[test]
fn scripts_get_a_writable_throwaway_var() {
    require_root!();
    let h = RepoHost::serving(vec![
        TestPackage::new("state-keeper", "1.0-1")
            .dir("/usr/share/state-keeper")
            // rpm-state carries state from %pre to %posttrans; the rest of /var is writable too.
            .script(
                pkglayer_testkit::Script::Pre,
                "mkdir -p /var/lib/rpm-state/state-keeper\n\
                 echo 'from pre' > /var/lib/rpm-state/state-keeper/mark\n\
                 touch /var/tmp/state-keeper.tmp\n\
                 mkdir -p /var/lib/state-keeper /var/cache/state-keeper /var/log/state-keeper\n\
                 echo data > /var/lib/state-keeper/db\n",
            )
            .script(
                pkglayer_testkit::Script::PostTrans,
                "cat /var/lib/rpm-state/state-keeper/mark > /usr/share/state-keeper/seen\n\
                 test -e /var/tmp/state-keeper.tmp && test -f /var/lib/state-keeper/db\n\
                 echo ok >> /usr/share/state-keeper/seen\n",
            ),
    ]);
    ok(&h.pkglayer(&["install", "state-keeper"]));
    let root = h.newest();
    assert_eq!(
        read(root.join("usr/share/state-keeper/seen")),
        "from pre\nok\n"
    );
    // Nothing the scripts wrote in /var is deployed: not in the commit, not in the stateroot's /var.
    let commit = &h.deployments()[0];
    let listing = h.host.sysroot.ostree(&["ls", "-R", commit, "/"]).unwrap();
    assert!(!listing.contains("state-keeper.tmp"), "{listing}");
    assert!(!listing.contains("/var/lib/state-keeper"), "{listing}");
    assert!(!listing.contains("rpm-state"), "{listing}");
    let var = h.host.sysroot.path.join("ostree/deploy/testos/var");
    for path in [
        "lib/state-keeper",
        "lib/rpm-state/state-keeper",
        "tmp/state-keeper.tmp",
    ] {
        assert!(
            !var.join(path).exists(),
            "{path} reached the stateroot's /var"
        );
    }
    h.fsck();
}

const DEMO_UNIT: &str = "[Unit]\nDescription=Demo\n[Service]\nExecStart=/usr/bin/true\n\
                         [Install]\nWantedBy=multi-user.target\n";

#[test]
fn systemctl_in_scripts_works_offline_and_skips_what_needs_a_running_system() {
    require_root!();
    let h = RepoHost::new(&sandbox_base("1"), |_| {
        vec![
            TestPackage::new("unit-owner", "1.0-1")
                .file("/usr/lib/systemd/system/demo.service", DEMO_UNIT)
                .dir("/usr/share/unit-owner")
                .script(
                    pkglayer_testkit::Script::Post,
                    "set -e\n\
                     test \"$SYSTEMD_OFFLINE\" = 1\n\
                     test -e /run/ostree-booted\n\
                     systemctl enable demo.service\n\
                     systemctl daemon-reload\n\
                     systemctl restart demo.service\n\
                     systemctl try-restart demo.service\n\
                     systemctl --no-reload preset demo.service\n\
                     echo \"is-enabled: $(systemctl is-enabled demo.service)\" > /usr/share/unit-owner/seen\n\
                     if systemctl --quiet is-active demo.service; then s=active; else s=inactive; fi\n\
                     echo \"is-active: $s\" >> /usr/share/unit-owner/seen\n",
                ),
        ]
    });
    ok(&h.pkglayer(&["install", "unit-owner"]));
    let root = h.newest();
    // The real systemctl enabled it, offline: the link is in the image's /etc (to the unit by
    // the unit directory this systemctl was built with, /lib or /usr/lib, one and the same here).
    for etc in ["usr/etc", "etc"] {
        let link = root
            .join(etc)
            .join("systemd/system/multi-user.target.wants/demo.service");
        let target =
            std::fs::read_link(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
        assert!(
            [
                "/usr/lib/systemd/system/demo.service",
                "/lib/systemd/system/demo.service"
            ]
            .contains(&target.to_string_lossy().as_ref()),
            "{}",
            target.display()
        );
    }
    assert_eq!(
        read(root.join("usr/share/unit-owner/seen")),
        "is-enabled: enabled\nis-active: inactive\n"
    );
    h.fsck();
}

#[test]
fn post_e_scripts_are_expanded_with_the_images_macros() {
    require_root!();
    let h = RepoHost::new(&sandbox_base("1"), |_| Vec::new());
    add_to_repo(
        &h.host.dir().join("www/repo"),
        &[expanded_post_package(
            "expander",
            "/usr/share/expander",
            &format!(
                "echo '%{{{}}} %{{_prefix}}' > %{{_datadir}}/expander/note\n",
                BASE_MACRO.0
            ),
        )
        .unwrap()],
    )
    .unwrap();
    ok(&h.pkglayer(&["install", "expander"]));
    assert_eq!(
        read(h.newest().join("usr/share/expander/note")),
        format!("{} /usr\n", BASE_MACRO.1)
    );
    h.fsck();
}

#[test]
fn scripts_may_not_delete_what_the_image_has() {
    require_root!();
    let h = RepoHost::serving(vec![
        TestPackage::new("wiper", "1.0-1").script(
            pkglayer_testkit::Script::Post,
            "rm -rf /* 2>/dev/null\nexit 0\n",
        ),
        TestPackage::new("pruner", "1.0-1").script(
            pkglayer_testkit::Script::Post,
            "rm -f /usr/lib/os-release\n",
        ),
        // Replacing a file, and deleting what a script made, are fine.
        TestPackage::new("replacer", "1.0-1").script(
            pkglayer_testkit::Script::Post,
            "echo scratch > /usr/share/replacer-scratch\n\
             rm /usr/share/replacer-scratch\n\
             cp /etc/group /tmp/group\n\
             rm /etc/group\n\
             { cat /tmp/group; echo replaced:x:1234:; } > /etc/group\n",
        ),
    ]);
    let err = refused(&h, "wiper", &[]);
    assert!(
        err.contains(&format!(
            "the %post scriptlet of {} deleted ",
            nevra("wiper")
        )),
        "{err}"
    );
    // The base's filesystem package owns them.
    for path in ["\n  /bin (filesystem-", "\n  /usr (filesystem-"] {
        assert!(err.contains(path), "{path}: {err}");
    }
    assert!(err.contains("--skip-scripts=wiper"), "{err}");

    let err = refused(&h, "pruner", &[]);
    assert!(
        err.contains(&format!(
            "the %post scriptlet of {} deleted 1 path that packages own:\n  \
             /usr/lib/os-release (testos-release-1-1.testos.noarch)",
            nevra("pruner")
        )),
        "{err}"
    );

    ok(&h.pkglayer(&["install", "replacer"]));
    let root = h.newest();
    let group = read(root.join("usr/etc/group"));
    assert!(group.starts_with("root:x:0:\n"), "{group}");
    assert!(group.ends_with("\nreplaced:x:1234:\n"), "{group}");
    assert!(!root.join("usr/share/replacer-scratch").exists());
    h.fsck();
}

// Hostile packages.

#[test]
fn scripts_keep_only_the_capabilities_they_need() {
    require_root!();
    let h = RepoHost::serving(vec![
        TestPackage::new("inspector", "1.0-1")
            .dir("/usr/share/inspector")
            .script(
                pkglayer_testkit::Script::Post,
                "grep -E '^(CapEff|CapPrm|NoNewPrivs|Seccomp):' /proc/self/status \
                 > /usr/share/inspector/status\n\
                 ls /dev > /usr/share/inspector/dev\n",
            ),
    ]);
    ok(&h.pkglayer(&["install", "inspector"]));
    let root = h.newest();
    // chown, dac_override, fowner, fsetid, kill, setgid, setuid, setpcap, sys_chroot, setfcap.
    let kept: u64 = [0, 1, 3, 4, 5, 6, 7, 8, 18, 31]
        .iter()
        .map(|bit| 1u64 << bit)
        .sum();
    assert_eq!(
        read(root.join("usr/share/inspector/status")),
        format!("CapPrm:\t{kept:016x}\nCapEff:\t{kept:016x}\nNoNewPrivs:\t1\nSeccomp:\t2\n")
    );
    // A minimal /dev: no disks, no memory, no kernel messages.
    let dev = read(root.join("usr/share/inspector/dev"));
    for absent in ["vda", "sda", "mem", "kmsg", "loop0"] {
        assert!(!dev.lines().any(|l| l == absent), "{absent}: {dev}");
    }
    assert!(dev.lines().any(|l| l == "null"), "{dev}");
}

#[test]
fn a_script_cannot_make_and_write_a_block_device() {
    require_root!();
    let h = RepoHost::serving(vec![TestPackage::new("mknoder", "1.0-1").script(
        pkglayer_testkit::Script::Post,
        // loop255: no such disk here, whatever happens.
        "mknod /tmp/disk b 7 255 && dd if=/dev/zero of=/tmp/disk bs=512 count=1\n",
    )]);
    let err = refused(&h, "mknoder", &[]);
    failed_with(&err, "mknoder", 1);
    assert!(
        err.contains("| mknod: /tmp/disk: Operation not permitted"),
        "{err}"
    );
}

#[test]
fn a_script_cannot_load_a_kernel_module() {
    require_root!();
    let h = RepoHost::serving(vec![
        TestPackage::new("module-loader", "1.0-1")
            .file("/usr/share/module-loader/fake.ko", "not a module\n")
            .script(
                pkglayer_testkit::Script::Post,
                "insmod /usr/share/module-loader/fake.ko\n",
            ),
    ]);
    let err = refused(&h, "module-loader", &[]);
    failed_with(&err, "module-loader", 1);
    assert!(
        err.contains("fake.ko'") && err.contains("Operation not permitted"),
        "{err}"
    );
}

#[test]
fn a_script_cannot_set_the_clock() {
    require_root!();
    // A time the kernel refuses anyway (before the epoch): harmless whatever happens, and refused
    // for want of permission before the kernel looks at it.
    let h = RepoHost::serving(vec![TestPackage::new("clock-setter", "1.0-1").script(
        pkglayer_testkit::Script::Post,
        // busybox's date says when it cannot set the date, and ends well all the same.
        "said=$(date -s @-100 2>&1)\necho \"$said\"\ncase $said in *\"can't set\"*) exit 1 ;; esac\n",
    )]);
    let err = refused(&h, "clock-setter", &[]);
    failed_with(&err, "clock-setter", 1);
    assert!(
        err.contains("| date: can't set date: Operation not permitted"),
        "{err}"
    );
}

#[test]
fn a_script_cannot_mount() {
    require_root!();
    let h = RepoHost::serving(vec![TestPackage::new("mounter", "1.0-1").script(
        pkglayer_testkit::Script::Post,
        "mkdir -p /tmp/m\nmount -t tmpfs none /tmp/m\n",
    )]);
    let err = refused(&h, "mounter", &[]);
    failed_with(&err, "mounter", 1);
    // busybox's words for EPERM.
    assert!(
        err.contains("| mount: permission denied (are you root?)"),
        "{err}"
    );
}

#[test]
fn a_script_cannot_write_kernel_settings() {
    require_root!();
    let setting = "/proc/sys/vm/stat_interval";
    let value = read(setting);
    // Writes back the value it has: harmless whatever happens.
    let h = RepoHost::serving(vec![TestPackage::new("sysctl-writer", "1.0-1").script(
        pkglayer_testkit::Script::Post,
        &format!("value=$(cat {setting})\necho \"$value\" > {setting}\n"),
    )]);
    let err = refused(&h, "sysctl-writer", &[]);
    failed_with(&err, "sysctl-writer", 1);
    assert!(err.contains("Read-only file system"), "{err}");
    assert_eq!(read(setting), value);
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(path: &Path) -> anyhow::Result<Self> {
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256M", "pkglayer-test"])
            .arg(path))?;
        Ok(SmallDisk(path.to_path_buf()))
    }

    fn free(&self) -> u64 {
        let out = run(Command::new("df")
            .args(["--output=avail", "-B1"])
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

#[test]
fn a_script_filling_its_space_fails_and_the_disk_keeps_its_room() {
    require_root!();
    // Declared first, dropped last: unmounted after the host is gone.
    let disk: std::cell::RefCell<Option<SmallDisk>> = Default::default();
    let h = RepoHost::with_sysroot_prepared(
        &base_packages("1"),
        |_| {
            vec![TestPackage::new("filler", "1.0-1").script(
                pkglayer_testkit::Script::Post,
                // Ignores the error and ends well: the layering must fail all the same.
                "cat /dev/zero > /usr/share/filler.data\necho still here\nexit 0\n",
            )]
        },
        |path| {
            *disk.borrow_mut() = Some(SmallDisk::mount(path)?);
            Ok(())
        },
    );
    let disk = disk.borrow();
    let disk = disk.as_ref().unwrap();
    // Downloaded and imported first: what is measured is the scripts' run.
    ok(&h.pkglayer(&["install", "--download-only", "filler"]));
    let free = disk.free();
    let err = refused(&h, "filler", &[("PKGLAYER_SCRIPT_SPACE", "64")]);
    assert!(
        err.contains(&format!(
            "the %post scriptlet of {} filled the 64 MiB scripts may write",
            nevra("filler")
        )),
        "{err}"
    );
    assert!(err.contains("PKGLAYER_SCRIPT_SPACE"), "{err}");
    let after = disk.free();
    assert!(
        after + (4 << 20) >= free,
        "the disk lost {} bytes",
        free.saturating_sub(after)
    );
}

#[test]
fn a_script_running_forever_is_stopped() {
    require_root!();
    let h = RepoHost::serving(vec![
        TestPackage::new("sleeper", "1.0-1")
            .script(pkglayer_testkit::Script::Post, "sleep 86399\n"),
    ]);
    let start = Instant::now();
    let err = refused(&h, "sleeper", &[("PKGLAYER_SCRIPT_TIMEOUT", "3")]);
    assert!(
        err.contains(&format!(
            "the %post scriptlet of {} was still running after 3 s, and was stopped",
            nevra("sleeper")
        )),
        "{err}"
    );
    assert!(err.contains("PKGLAYER_SCRIPT_TIMEOUT"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(60));
    assert_eq!(processes_with("sleep 86399"), Vec::<String>::new());

    // pkglayer killed while the script runs: the sandbox goes with it.
    let mut child = h.command(&["install", "sleeper"]).spawn();
    let start = Instant::now();
    while processes_with("sleep 86399").is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the script never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    while !processes_with("sleep 86399").is_empty() {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "the script outlived pkglayer: {:?}",
            processes_with("sleep 86399")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    h.fsck();
}

#[test]
fn a_daemon_started_by_a_script_is_stopped_and_fails_the_layering() {
    require_root!();
    let h = RepoHost::serving(vec![TestPackage::new("daemonizer", "1.0-1").script(
        pkglayer_testkit::Script::Post,
        "setsid sleep 86398 </dev/null >/dev/null 2>&1 &\nexit 0\n",
    )]);
    let err = refused(&h, "daemonizer", &[]);
    assert!(
        err.contains(&format!(
            "the %post scriptlet of {} left processes running after it ended (",
            nevra("daemonizer")
        )),
        "{err}"
    );
    assert_eq!(processes_with("sleep 86398"), Vec::<String>::new());
}
