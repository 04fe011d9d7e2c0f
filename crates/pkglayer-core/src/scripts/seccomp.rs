//! The seccomp filter package scripts run under: every system call is allowed but those no package
//! script needs and that reach past the image being built (the kernel, the clock, devices, mounts,
//! other processes, namespaces). They fail with `EPERM`, as if the capability were missing, so a
//! script sees an ordinary error.
//!
//! The filter is built with libseccomp (syscall numbers for every architecture the machine runs,
//! 32-bit calls of a 64-bit machine included) and handed to bubblewrap as compiled BPF
//! (`--seccomp FD`), which loads it after its own mounts, just before it runs the driver.

use std::path::Path;

use anyhow::{Context, Result};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

/// System calls refused outright, by what they would reach.
pub(crate) const REFUSED: &[&str] = &[
    // Kernel code.
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "perf_event_open",
    "iopl",
    "ioperm",
    // The clock.
    "settimeofday",
    "clock_settime",
    "clock_settime64",
    "clock_adjtime",
    "clock_adjtime64",
    "adjtimex",
    "stime",
    // The machine.
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "quotactl_fd",
    "syslog",
    "vhangup",
    // Mounts: the sandbox's are made before the filter applies.
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    // Namespaces: a new user namespace would give back every capability inside it.
    "unshare",
    "setns",
    // Other processes' memory, the kernel's keyrings, file handles that bypass paths.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "keyctl",
    "add_key",
    "request_key",
    "open_by_handle_at",
    "userfaultfd",
    "fanotify_init",
];

/// Writes the compiled filter to `path`.
pub(crate) fn write_filter(path: &Path) -> Result<()> {
    let refuse = ScmpAction::Errno(libc::EPERM);
    let mut filter = ScmpFilterContext::new(ScmpAction::Allow)?;
    // 32-bit programs on a 64-bit machine call by other numbers: filter those too.
    if ScmpArch::native() == ScmpArch::X8664 {
        filter.add_arch(ScmpArch::X86)?;
        filter.add_arch(ScmpArch::X32)?;
    }
    for name in REFUSED {
        // A call this libseccomp or architecture does not know cannot be made either.
        if let Ok(syscall) = ScmpSyscall::from_name(name) {
            filter
                .add_rule(refuse, syscall)
                .with_context(|| format!("refusing {name}"))?;
        }
    }
    // Device nodes (character or block); FIFOs and sockets stay allowed.
    for (name, mode_arg) in [("mknod", 1), ("mknodat", 2)] {
        let syscall = ScmpSyscall::from_name(name)?;
        for kind in [libc::S_IFCHR, libc::S_IFBLK] {
            let compare = ScmpArgCompare::new(
                mode_arg,
                ScmpCompareOp::MaskedEqual(u64::from(libc::S_IFMT)),
                u64::from(kind),
            );
            filter.add_rule_conditional(refuse, syscall, &[compare])?;
        }
    }
    // A new user namespace through clone; clone3 passes its flags in memory the filter cannot
    // read, so it answers "not implemented" and the C library falls back to clone.
    let new_user = libc::CLONE_NEWUSER as u64;
    filter.add_rule_conditional(
        refuse,
        ScmpSyscall::from_name("clone")?,
        &[ScmpArgCompare::new(
            0,
            ScmpCompareOp::MaskedEqual(new_user),
            new_user,
        )],
    )?;
    if let Ok(clone3) = ScmpSyscall::from_name("clone3") {
        filter.add_rule(ScmpAction::Errno(libc::ENOSYS), clone3)?;
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("Creating {}", path.display()))?;
    filter
        .export_bpf(&file)
        .context("Compiling the scripts' seccomp filter")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles_to_bpf() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("filter.bpf");
        write_filter(&path).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        // Classic BPF: 8-byte instructions, and a rule or more for every refused call.
        assert_eq!(len % 8, 0);
        assert!(len / 8 > REFUSED.len() as u64, "{len} bytes");
    }
}
