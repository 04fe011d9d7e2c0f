//! Where a payload path goes in an OSTree tree.
//!
//! `/etc` → `/usr/etc` (ostree's 3-way merge then handles it); `/boot` → `/usr/lib/ostree-boot`;
//! `/bin`, `/sbin`, `/lib` and `/lib64` → under `/usr` (OSTree bases link them there, as rpm does
//! through the links; some real packages still ship such paths, e.g. an early libtirpc of CentOS
//! Stream 9);
//! `/opt` → `/usr/lib/opt`, with a tmpfiles.d symlink back; directories and symlinks in `/var` and
//! `/run` become tmpfiles.d lines; files there, and anything else outside `/usr`, have no place.
//! Neither has `/usr/local`: it is the machine's (OSTree bases link it to `/var/usrlocal`), and a
//! layered copy could only replace the base's link; rpm-ostree refuses it as an unsupported path
//! too. The import applies these rules to a payload, and planning to a repo's file lists, to refuse
//! a package before downloading it.

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
        "usr" if rest == "local" || rest.starts_with("local/") => None,
        "usr" => Some(Placement::Tree(relative.to_string())),
        "etc" => Some(Placement::Tree(join("usr/etc"))),
        "bin" | "sbin" | "lib" | "lib64" => Some(Placement::Tree(join(&format!("usr/{top}")))),
        "boot" => Some(Placement::Tree(join("usr/lib/ostree-boot"))),
        "opt" => Some(Placement::Tree(join("usr/lib/opt"))),
        "var" | "run" => Some(Placement::Tmpfiles),
        _ => None,
    }
}

/// The tmpfiles.d symlink a relocated path needs so it is found where the package put it: `/opt/X`
/// for anything under `/opt/X`. As `(path, line)`.
pub(crate) fn link_back(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/opt/")?;
    let top = rest.split('/').next().unwrap_or(rest);
    let link = format!("/opt/{top}");
    let line = format!(
        "L {} - - - - {}",
        tmpfiles_path(&link),
        tmpfiles_argument(&format!("/usr/lib/opt/{top}"))
    );
    Some((link, line))
}

/// `path` as the path field of a tmpfiles.d line: as it is when it has only letters, digits and
/// `/._-+@:,=~`, else in double quotes, with `\` and `"` escaped by a
/// backslash and `%` doubled, as systemd-tmpfiles unquotes and expands specifiers in that field. A
/// path with spaces or quotes then stays one field and exactly itself. (Control characters have no
/// escape every systemd reads alike there; the import refuses names holding them.)
pub(crate) fn tmpfiles_path(path: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+@:,=~".contains(c);
    if path.chars().all(plain) {
        return path.to_string();
    }
    format!("\"{}\"", escape(path, true))
}

/// `text` as the last field of a tmpfiles.d line (a symlink's target): systemd-tmpfiles takes the
/// rest of the line there, C-unescaped and with specifiers expanded, but not unquoted; so nothing
/// is quoted, and what would be read otherwise (a leading blank, `\`, `%`) is escaped.
pub(crate) fn tmpfiles_argument(text: &str) -> String {
    escape(text, false)
}

fn escape(text: &str, quoted: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        match c {
            '%' => out.push_str("%%"),
            '\\' => out.push_str("\\\\"),
            '"' if quoted => out.push_str("\\\""),
            ' ' | '\t' if !quoted && i == 0 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
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
            ("/usr/local/bin/x", None),
            ("/usr/local", None),
            ("/usr/localtime", tree("usr/localtime")),
            ("/var/lib/strace", Some(Placement::Tmpfiles)),
            ("/run/strace", Some(Placement::Tmpfiles)),
            ("/lib64/libtirpc.so.3", tree("usr/lib64/libtirpc.so.3")),
            ("/lib64", tree("usr/lib64")),
            ("/sbin/ldconfig", tree("usr/sbin/ldconfig")),
            ("/bin/sh", tree("usr/bin/sh")),
            ("/lib/modules", tree("usr/lib/modules")),
            ("/libexec/x", None),
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
        assert_eq!(
            link_back("/opt/My App/bin").unwrap().1,
            "L \"/opt/My App\" - - - - /usr/lib/opt/My App"
        );
        assert_eq!(link_back("/usr/local/bin/x"), None);
        assert_eq!(link_back("/usr/bin/strace"), None);
    }

    #[test]
    fn tmpfiles_fields_are_quoted_and_escaped() {
        assert_eq!(
            tmpfiles_path("/var/lib/plain-name_1.0"),
            "/var/lib/plain-name_1.0"
        );
        assert_eq!(tmpfiles_path("/var/lib/a b"), "\"/var/lib/a b\"");
        assert_eq!(
            tmpfiles_path("/var/lib/it's \"x\" 100%\\"),
            "\"/var/lib/it's \\\"x\\\" 100%%\\\\\""
        );
        assert_eq!(tmpfiles_argument("../a b"), "../a b");
        assert_eq!(tmpfiles_argument(" x%"), "\\x20x%%");
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
