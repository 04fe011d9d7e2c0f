//! Where a payload path goes in an OSTree tree.
//!
//! `/etc` → `/usr/etc` (ostree's 3-way merge then handles it); `/boot` → `/usr/lib/ostree-boot`;
//! `/opt` → `/usr/lib/opt` and `/usr/local` → `/usr/lib/usrlocal`, each with a tmpfiles.d symlink
//! back; directories and symlinks in `/var` and `/run` become tmpfiles.d lines; files there, and
//! anything else outside `/usr`, have no place. The import applies these rules to a payload, and
//! planning to a repo's file lists, to refuse a package before downloading it.

/// Where a payload path goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// At this path (relative, no leading slash).
    Tree(String),
    /// Not in the tree: a tmpfiles.d line recreates it at boot.
    Tmpfiles,
}

/// Where the absolute payload path `path` goes; `None` when an OSTree tree has no place for it.
pub(crate) fn place(path: &str) -> Option<Placement> {
    let relative = path.trim_start_matches('/');
    let (top, rest) = relative.split_once('/').unwrap_or((relative, ""));
    let join = |prefix: &str| {
        if rest.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}/{rest}")
        }
    };
    match top {
        "usr" if rest == "local" || rest.starts_with("local/") => Some(Placement::Tree(format!(
            "usr/lib/usrlocal{}",
            &rest["local".len()..]
        ))),
        "usr" => Some(Placement::Tree(relative.to_string())),
        "etc" => Some(Placement::Tree(join("usr/etc"))),
        "boot" => Some(Placement::Tree(join("usr/lib/ostree-boot"))),
        "opt" => Some(Placement::Tree(join("usr/lib/opt"))),
        "var" | "run" => Some(Placement::Tmpfiles),
        _ => None,
    }
}

/// The tmpfiles.d symlink a relocated path needs so it is found where the package put it: `/opt/X`
/// for anything under `/opt/X`, `/usr/local` for anything under it. As `(path, line)`.
pub(crate) fn link_back(path: &str) -> Option<(String, String)> {
    if let Some(rest) = path.strip_prefix("/opt/") {
        let top = rest.split('/').next().unwrap_or(rest);
        return Some((
            format!("/opt/{top}"),
            format!("L /opt/{top} - - - - /usr/lib/opt/{top}"),
        ));
    }
    (path == "/usr/local" || path.starts_with("/usr/local/")).then(|| {
        (
            "/usr/local".to_string(),
            "L /usr/local - - - - /usr/lib/usrlocal".to_string(),
        )
    })
}

/// Whether `path` is absolute and clean: no empty, `.` or `..` parts that could climb out of the
/// directory they name.
pub(crate) fn is_clean(path: &str) -> bool {
    path.strip_prefix('/').is_some_and(|relative| {
        relative
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_ostree_rules() {
        let tree = |s: &str| Some(Placement::Tree(s.to_string()));
        let cases = [
            ("/usr/bin/strace", tree("usr/bin/strace")),
            ("/etc/strace.conf", tree("usr/etc/strace.conf")),
            ("/etc", tree("usr/etc")),
            ("/boot/vmlinuz", tree("usr/lib/ostree-boot/vmlinuz")),
            ("/opt/vendor/bin/tool", tree("usr/lib/opt/vendor/bin/tool")),
            ("/usr/local/bin/x", tree("usr/lib/usrlocal/bin/x")),
            ("/usr/localtime", tree("usr/localtime")),
            ("/var/lib/strace", Some(Placement::Tmpfiles)),
            ("/run/strace", Some(Placement::Tmpfiles)),
            ("/home/user/file", None),
            ("/srv/data", None),
        ];
        for (path, expected) in cases {
            assert_eq!(place(path), expected, "{path}");
        }
    }

    #[test]
    fn relocated_paths_link_back() {
        assert_eq!(
            link_back("/opt/vendor/bin/tool"),
            Some((
                "/opt/vendor".into(),
                "L /opt/vendor - - - - /usr/lib/opt/vendor".into()
            ))
        );
        assert_eq!(link_back("/usr/local/bin/x").unwrap().0, "/usr/local");
        assert_eq!(link_back("/usr/localtime"), None);
        assert_eq!(link_back("/usr/bin/strace"), None);
    }

    #[test]
    fn only_clean_absolute_paths_pass() {
        assert!(is_clean("/usr/bin/strace"));
        for bad in [
            "usr/bin",
            "/usr//bin",
            "/usr/./bin",
            "/usr/../etc",
            "/usr/bin/",
        ] {
            assert!(!is_clean(bad), "{bad}");
        }
    }
}
