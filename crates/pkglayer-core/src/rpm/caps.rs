//! File capabilities: rpm's text form (`cap_net_raw=ep`) to the `security.capability` xattr value.

use anyhow::{Result, bail};

/// Linux capability names in number order (capability.h).
const NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// `VFS_CAP_REVISION_2` with the effective bit when any capability is effective.
const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x1;

/// Encodes clauses like `cap_net_raw,cap_net_admin=ep` or `cap_sys_admin+ep` (libcap's text form,
/// as rpm stores it) into the xattr value the kernel reads.
pub fn encode(text: &str) -> Result<Vec<u8>> {
    let (mut permitted, mut inheritable, mut effective) = (0u64, 0u64, false);
    for clause in text.split_whitespace() {
        let Some(at) = clause.find(['=', '+']) else {
            bail!("capabilities {text:?}: clause {clause:?} has no = or +");
        };
        let (names, flags) = (&clause[..at], &clause[at + 1..]);
        let mut bits = 0u64;
        for name in names.split(',').filter(|n| !n.is_empty()) {
            let name = name.to_ascii_lowercase();
            let Some(number) = NAMES.iter().position(|n| *n == name) else {
                bail!("capabilities {text:?}: unknown capability {name}");
            };
            bits |= 1 << number;
        }
        for flag in flags.chars() {
            match flag {
                'p' => permitted |= bits,
                'i' => inheritable |= bits,
                'e' => effective |= bits != 0,
                other => bail!("capabilities {text:?}: unknown flag {other}"),
            }
        }
    }
    let magic = VFS_CAP_REVISION_2
        | if effective {
            VFS_CAP_FLAGS_EFFECTIVE
        } else {
            0
        };
    let mut value = Vec::with_capacity(20);
    value.extend_from_slice(&magic.to_le_bytes());
    for half in [0, 32] {
        value.extend_from_slice(&((permitted >> half) as u32).to_le_bytes());
        value.extend_from_slice(&((inheritable >> half) as u32).to_le_bytes());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_setcap() {
        // `setcap cap_net_raw=ep` writes: 01 00 00 02 | 00 20 00 00 | 0 | 0 | 0
        assert_eq!(
            encode("cap_net_raw=ep").unwrap(),
            [
                1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
            ]
        );
        let both = encode("cap_net_raw,cap_net_admin+p").unwrap();
        assert_eq!(&both[..8], [0, 0, 0, 2, 0, 0x30, 0, 0]);
        // cap_bpf (39) lands in the upper word.
        assert_eq!(&encode("cap_bpf=p").unwrap()[12..16], [0x80, 0, 0, 0]);
        assert!(
            encode("cap_flying=ep")
                .unwrap_err()
                .to_string()
                .contains("unknown capability")
        );
        assert!(encode("cap_chown").is_err());
    }
}
