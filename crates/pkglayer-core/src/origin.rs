//! A deployment's origin: what it tracks and what the user layered on it.
//!
//! The on-disk form is the GKeyFile that rpm-ostree writes, so a host can move between the two tools:
//!
//! ```text
//! [origin]
//! baserefspec=fedora:fedora/40/x86_64/silverblue
//!
//! [packages]
//! requested=strace;vim-enhanced;
//! requested-local=<sha256>:foo-1.0-1.x86_64;
//!
//! [pkglayer]
//! skip-scripts=foo;
//! ```
//!
//! A plain deployment uses `refspec=`; once anything is layered the key becomes `baserefspec=`, so that
//! plain `ostree admin upgrade` refuses ("No origin/refspec") instead of silently dropping the layer.
//! Groups and keys this module does not know (`[overrides]`, `[rpmostree]`, `[libostree]`, ...) are kept
//! exactly as they were when the origin is written back.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, anyhow, bail};
use glib::KeyFile;

use crate::modularity::ModuleRequests;
use crate::rpm::Nevra;

const ORIGIN: &str = "origin";
const PACKAGES: &str = "packages";
const OVERRIDES: &str = "overrides";
const RPMOSTREE: &str = "rpmostree";
const REFSPEC: &str = "refspec";
const BASEREFSPEC: &str = "baserefspec";
const REQUESTED: &str = "requested";
const REQUESTED_LOCAL: &str = "requested-local";
const PKGLAYER: &str = "pkglayer";
const MODULES: &str = "modules";
const MODULES_ENABLE: &str = "enable";
const MODULES_INSTALL: &str = "install";
const SKIP_SCRIPTS: &str = "skip-scripts";
const OVERRIDE_REMOVE: &str = "remove";
const OVERRIDE_REPLACE_LOCAL: &str = "replace-local";
const OVERRIDE_REPLACE: &str = "replace";
const UNCONFIGURED_STATE: &str = "unconfigured-state";
const OVERRIDE_COMMIT: &str = "override-commit";

/// The typed view of an origin file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// What the base follows, `remote:ref` (or a bare `ref` for a local ref).
    pub refspec: String,
    /// Packages requested from repositories: names, provides or file paths, as the user typed them.
    pub requested: BTreeSet<String>,
    /// Local RPMs, NEVRA -> sha256 of the RPM file (imported into the package cache by the operation
    /// that names the file).
    pub requested_local: BTreeMap<Nevra, String>,
    /// Names of packages whose scripts and file triggers never run (pkglayer's own group).
    pub skip_scripts: BTreeSet<String>,
    /// Base packages the deployment goes without, by name (`[overrides] remove=`).
    pub override_remove: BTreeSet<String>,
    /// Local RPMs that replace the base packages of their name, NEVRA -> sha256 of the RPM file
    /// (`[overrides] replace-local=SHA256:NEVRA;`, kept in the package cache as local packages are).
    pub override_replace_local: BTreeMap<Nevra, String>,
    /// Base packages that follow a repo's builds instead of the base's: (repo id, names), in the
    /// order of `[overrides] replace=repo=ID,name,name;` (one entry a repo).
    pub override_replace_remote: Vec<(String, Vec<String>)>,
    /// Module streams enabled and profiles installed (`[modules] enable=`, `install=`, as rpm-ostree
    /// wrote them).
    pub modules: ModuleRequests,
    /// `[origin] override-commit=`: the base is pinned to this commit of the refspec's history
    /// (`deploy`); `upgrade` and `rebase` drop it.
    pub override_commit: Option<String>,
    /// `[origin] unconfigured-state=`: why the host may not upgrade yet (rpm-ostree writes it until a
    /// host is registered, e.g. with a RHEL subscription). Kept as it is when written back.
    pub unconfigured_state: Option<String>,
    /// The text this origin was parsed from; unknown groups and keys are carried over from it.
    source: String,
}

impl Origin {
    /// A fresh origin that tracks `refspec` and layers nothing.
    pub fn new(refspec: impl Into<String>) -> Self {
        Origin {
            refspec: refspec.into(),
            requested: BTreeSet::new(),
            requested_local: BTreeMap::new(),
            skip_scripts: BTreeSet::new(),
            override_remove: BTreeSet::new(),
            override_replace_local: BTreeMap::new(),
            override_replace_remote: Vec::new(),
            modules: ModuleRequests::default(),
            override_commit: None,
            unconfigured_state: None,
            source: String::new(),
        }
    }

    /// Parses origin text. Fails on text that is not a key file, or one that names no refspec.
    pub fn parse(text: &str) -> Result<Self> {
        if text.contains('\0') {
            bail!("not a valid key file: it holds a NUL byte");
        }
        let keyfile = load_keyfile(text)?;
        let refspec = match (
            string_key(&keyfile, ORIGIN, BASEREFSPEC),
            string_key(&keyfile, ORIGIN, REFSPEC),
        ) {
            (Some(base), _) => base,
            (None, Some(plain)) => plain,
            (None, None)
                if keyfile
                    .has_key(ORIGIN, "container-image-reference")
                    .unwrap_or(false) =>
            {
                bail!("origins that track a container image are not supported yet")
            }
            (None, None) => bail!("no [origin] refspec= or baserefspec= key"),
        };
        if refspec.trim().is_empty() {
            bail!("the origin's refspec is empty");
        }

        let requested = string_list(&keyfile, PACKAGES, REQUESTED)?
            .into_iter()
            .collect();
        let requested_local = local_list(&keyfile, PACKAGES, REQUESTED_LOCAL)?;

        Ok(Origin {
            refspec,
            requested,
            requested_local,
            skip_scripts: string_list(&keyfile, PKGLAYER, SKIP_SCRIPTS)?
                .into_iter()
                .collect(),
            override_remove: string_list(&keyfile, OVERRIDES, OVERRIDE_REMOVE)?
                .into_iter()
                .collect(),
            override_replace_local: local_list(&keyfile, OVERRIDES, OVERRIDE_REPLACE_LOCAL)?,
            override_replace_remote: remote_list(&keyfile)?,
            modules: ModuleRequests {
                enable: string_list(&keyfile, MODULES, MODULES_ENABLE)?
                    .into_iter()
                    .collect(),
                install: string_list(&keyfile, MODULES, MODULES_INSTALL)?
                    .into_iter()
                    .collect(),
            },
            override_commit: string_key(&keyfile, ORIGIN, OVERRIDE_COMMIT)
                .filter(|commit| !commit.trim().is_empty()),
            unconfigured_state: string_key(&keyfile, ORIGIN, UNCONFIGURED_STATE)
                .filter(|state| !state.trim().is_empty()),
            source: text.to_string(),
        })
    }

    /// Whether the deployment carries anything on top of its base, and so must use `baserefspec=`.
    /// Overrides and initramfs regeneration written by rpm-ostree count too: they are layering as well.
    pub fn is_layered(&self) -> bool {
        if !self.requested.is_empty()
            || !self.requested_local.is_empty()
            || !self.modules.is_empty()
            || self.has_overrides()
        {
            return true;
        }
        let Ok(keyfile) = load_keyfile(&self.source) else {
            return false;
        };
        // Override kinds this module does not model count as they are.
        let overrides = keyfile.keys(OVERRIDES).is_ok_and(|keys| {
            keys.iter().any(|key| {
                ![OVERRIDE_REMOVE, OVERRIDE_REPLACE_LOCAL, OVERRIDE_REPLACE].contains(&key.as_str())
            })
        });
        let initramfs = keyfile
            .boolean(RPMOSTREE, "regenerate-initramfs")
            .unwrap_or(false);
        overrides || initramfs
    }

    /// Whether the origin removes or replaces base packages (the overrides pkglayer carries out).
    pub fn has_overrides(&self) -> bool {
        !self.override_remove.is_empty()
            || !self.override_replace_local.is_empty()
            || !self.override_replace_remote.is_empty()
    }

    /// The origin as key-file text, with every group and key this module does not model preserved.
    pub fn to_text(&self) -> String {
        // The source parsed once already, so loading it again cannot fail; a fresh origin has none.
        let keyfile = load_keyfile(&self.source).unwrap_or_else(|_| KeyFile::new());
        for group in [ORIGIN, PACKAGES, MODULES, PKGLAYER, OVERRIDES] {
            dedupe_group(&keyfile, group);
        }
        let (key, stale) = if self.is_layered() {
            (BASEREFSPEC, REFSPEC)
        } else {
            (REFSPEC, BASEREFSPEC)
        };
        let _ = keyfile.remove_key(ORIGIN, stale);
        keyfile.set_string(ORIGIN, key, &self.refspec);
        match &self.override_commit {
            Some(commit) => keyfile.set_string(ORIGIN, OVERRIDE_COMMIT, commit),
            None => {
                let _ = keyfile.remove_key(ORIGIN, OVERRIDE_COMMIT);
            }
        }

        set_or_remove_list(
            &keyfile,
            PACKAGES,
            REQUESTED,
            self.requested.iter().cloned().collect(),
        );
        let local = self
            .requested_local
            .iter()
            .map(|(nevra, sha256)| format!("{sha256}:{nevra}"))
            .collect();
        set_or_remove_list(&keyfile, PACKAGES, REQUESTED_LOCAL, local);
        set_or_remove_list(
            &keyfile,
            OVERRIDES,
            OVERRIDE_REMOVE,
            self.override_remove.iter().cloned().collect(),
        );
        let replace_local = self
            .override_replace_local
            .iter()
            .map(|(nevra, sha256)| format!("{sha256}:{nevra}"))
            .collect();
        set_or_remove_list(&keyfile, OVERRIDES, OVERRIDE_REPLACE_LOCAL, replace_local);
        let replace = self
            .override_replace_remote
            .iter()
            .filter(|(_, names)| !names.is_empty())
            .map(|(repo, names)| {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                format!("repo={repo},{}", names.join(","))
            })
            .collect();
        set_or_remove_list(&keyfile, OVERRIDES, OVERRIDE_REPLACE, replace);
        let skip = self.skip_scripts.iter().cloned().collect();
        set_or_remove_list(&keyfile, PKGLAYER, SKIP_SCRIPTS, skip);
        for (key, values) in [
            (MODULES_ENABLE, &self.modules.enable),
            (MODULES_INSTALL, &self.modules.install),
        ] {
            set_or_remove_list(&keyfile, MODULES, key, values.iter().cloned().collect());
        }
        for group in [PACKAGES, MODULES, PKGLAYER, OVERRIDES] {
            if keyfile.keys(group).map(|k| k.is_empty()).unwrap_or(false) {
                let _ = keyfile.remove_group(group);
            }
        }
        keyfile.to_data().to_string()
    }

    /// The same origin as a `glib::KeyFile`, the form libostree takes when deploying.
    pub fn to_keyfile(&self) -> KeyFile {
        load_keyfile(&self.to_text()).expect("an origin we wrote is a valid key file")
    }

    /// The remote part of the refspec (`fedora` in `fedora:fedora/40/x86_64/silverblue`), if any.
    pub fn remote(&self) -> Option<&str> {
        self.refspec.split_once(':').map(|(remote, _)| remote)
    }
}

fn load_keyfile(text: &str) -> Result<KeyFile> {
    let keyfile = KeyFile::new();
    if !text.is_empty() {
        keyfile
            .load_from_data(text, glib::KeyFileFlags::KEEP_COMMENTS)
            .map_err(|e| anyhow!("{}", e.message()))
            .context("not a valid key file")?;
    }
    Ok(keyfile)
}

/// `[overrides] replace=repo=ID,name,…;`: repo id -> names. Another source than `repo=` is an
/// error (rpm-ostree knows no other either).
fn remote_list(keyfile: &KeyFile) -> Result<Vec<(String, Vec<String>)>> {
    let mut remote: Vec<(String, Vec<String>)> = Vec::new();
    for entry in string_list(keyfile, OVERRIDES, OVERRIDE_REPLACE)? {
        let mut parts = entry.split(',');
        let repo = parts
            .next()
            .and_then(|source| source.strip_prefix("repo="))
            .filter(|repo| !repo.is_empty())
            .ok_or_else(|| anyhow!("replace entry {entry:?} is not repo=ID,PKG,…"))?;
        remote.push((
            repo.to_string(),
            parts.filter(|p| !p.is_empty()).map(String::from).collect(),
        ));
    }
    Ok(remote)
}

/// The `SHA256:NEVRA` list at `group`/`key` (local packages), NEVRA -> sha256.
fn local_list(keyfile: &KeyFile, group: &str, key: &str) -> Result<BTreeMap<Nevra, String>> {
    let mut local = BTreeMap::new();
    for entry in string_list(keyfile, group, key)? {
        let (sha256, nevra) = entry
            .split_once(':')
            .filter(|(sha, _)| is_sha256_hex(sha))
            .and_then(|(sha, nevra)| Some((sha, Nevra::parse(nevra)?)))
            .ok_or_else(|| anyhow!("{key} entry {entry:?} is not SHA256:NEVRA"))?;
        local.insert(nevra, sha256.to_string());
    }
    Ok(local)
}

fn string_key(keyfile: &KeyFile, group: &str, key: &str) -> Option<String> {
    keyfile.string(group, key).ok().map(|v| v.to_string())
}

/// The list at `group`/`key`, empty when absent. A present value that is not a valid list (e.g. a
/// bad escape) is an error: silently reading it as empty would drop what the user layered.
fn string_list(keyfile: &KeyFile, group: &str, key: &str) -> Result<Vec<String>> {
    if !keyfile.has_key(group, key).unwrap_or(false) {
        return Ok(Vec::new());
    }
    let list = keyfile
        .string_list(group, key)
        .map_err(|e| anyhow!("[{group}] {key}= is not a valid list: {}", e.message()))?;
    // Surrounding whitespace is no part of a package spec, and GKeyFile cannot keep all of it
    // (a form feed that starts a value is dropped on reading).
    Ok(list
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

/// GKeyFile keeps a key written twice in a group (a hand-edited file), but reads and removes only one
/// of them, so the other would come back after a rewrite. Rebuilds such a group with each key once,
/// holding the value GKeyFile reads for it.
fn dedupe_group(keyfile: &KeyFile, group: &str) {
    let Ok(keys) = keyfile.keys(group) else {
        return;
    };
    let mut seen = BTreeSet::new();
    let unique: Vec<String> = keys
        .iter()
        .map(|k| k.to_string())
        .filter(|k| seen.insert(k.clone()))
        .collect();
    if unique.len() == keys.len() {
        return;
    }
    let values: Vec<(String, String)> = unique
        .into_iter()
        .filter_map(|k| Some((k.clone(), keyfile.value(group, &k).ok()?.to_string())))
        .collect();
    let _ = keyfile.remove_group(group);
    for (key, value) in values {
        keyfile.set_value(group, &key, &value);
    }
}

fn set_or_remove_list(keyfile: &KeyFile, group: &str, key: &str, values: Vec<String>) {
    if values.is_empty() {
        let _ = keyfile.remove_key(group, key);
    } else {
        // Set in place: removing first would leave a blank line behind on every rewrite.
        let value: String = values
            .iter()
            .map(|item| escape_list_item(item) + ";")
            .collect();
        keyfile.set_value(group, key, &value);
    }
}

/// Escapes one item of a key-file string list as GKeyFile does (glib's binding lacks the setter).
fn escape_list_item(item: &str) -> String {
    let mut out = String::with_capacity(item.len());
    for (i, c) in item.chars().enumerate() {
        match c {
            ' ' if i == 0 => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "5f1e1c27b7f3a9a2c1e8b3d4f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f";

    // Found by the `origin` fuzz target: a list with a bad escape read as empty, so the layered
    // packages vanished on the next write.
    #[test]
    fn an_unreadable_package_list_is_an_error_not_an_empty_one() {
        let text =
            "[origin]\nbaserefspec=fedora:fedora/40\n[packages]\nrequested=strace;bad\\aescape;\n";
        let err = Origin::parse(text).unwrap_err();
        assert!(
            format!("{err:#}").contains("[packages] requested= is not a valid list"),
            "{err:#}"
        );
    }

    // Found by the `origin` fuzz target: a key present twice (GKeyFile keeps both) survived a
    // rewrite that removed one, and came back on the next read.
    #[test]
    fn a_duplicated_key_is_rewritten_once() {
        let text = "[origin]\nbaserefspec=fedora:fedora/40\n[packages]\nrequested=strace;\n\n\
                    [packages]\nrequested=vim;\n";
        let mut origin = Origin::parse(text).unwrap();
        origin.requested.clear();
        origin.requested.insert("htop".into());
        let written = origin.to_text();
        assert_eq!(written.matches("requested=").count(), 1, "{written}");
        assert_eq!(
            Origin::parse(&written).unwrap().requested,
            BTreeSet::from(["htop".to_string()])
        );
    }

    // Found by the `origin` fuzz target: GKeyFile reads values as C strings, so text after a NUL
    // byte was read one way and written another.
    #[test]
    fn a_nul_byte_is_refused() {
        let text = "[origin]\nrefspec=r\n[packages]\nrequested=strace;\u{0}vim;\n";
        let err = Origin::parse(text).unwrap_err();
        assert!(format!("{err:#}").contains("NUL byte"), "{err:#}");
    }

    // Found by the `origin` fuzz target: an item starting with a form feed came back without it.
    #[test]
    fn list_items_are_trimmed() {
        let text = "[origin]\nrefspec=r\n[packages]\nrequested=\\s strace ;\x0c\x0fvim;\n";
        let origin = Origin::parse(text).unwrap();
        let expected = BTreeSet::from(["strace".to_string(), "\x0fvim".to_string()]);
        assert_eq!(origin.requested, expected);
        assert_eq!(
            Origin::parse(&origin.to_text()).unwrap().requested,
            expected
        );
    }

    // Found by the `origin` fuzz target: every rewrite added a blank line to the file.
    #[test]
    fn rewriting_is_stable() {
        let origin = Origin::parse(RPM_OSTREE_COMPLEX).unwrap();
        let once = origin.to_text();
        assert_eq!(Origin::parse(&once).unwrap().to_text(), once);
    }

    /// A real-world rpm-ostree origin with every kind of group it writes, including ones we don't model.
    const RPM_OSTREE_COMPLEX: &str = "\
[origin]
baserefspec=fedora:fedora/40/x86_64/silverblue
# pinned by the admin
override-commit=3c2e1b0f5d2d7a2f1e6b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081

[rpmostree]
regenerate-initramfs=true
initramfs-args=-I;/etc/crypttab;
initramfs-etc=/etc/crypttab;

[packages]
requested=strace;vim-enhanced;/usr/bin/htop;libvirt >= 9;
requested-local=5f1e1c27b7f3a9a2c1e8b3d4f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f:foo-1.0-1.x86_64;

[overrides]
remove=firefox;firefox-langpacks;
replace-local=aaaa1c27b7f3a9a2c1e8b3d4f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f:kernel-6.8.0-1.fc40.x86_64;

[modules]
enable=nodejs:20;
install=nodejs:20/default;

[libostree]
unlocked=development
";

    #[test]
    fn parses_origins() {
        struct Case {
            text: &'static str,
            refspec: &'static str,
            requested: &'static [&'static str],
            local: &'static [&'static str],
            layered: bool,
        }
        let cases = [
            Case {
                text: "[origin]\nrefspec=fedora:fedora/40/x86_64/silverblue\n",
                refspec: "fedora:fedora/40/x86_64/silverblue",
                requested: &[],
                local: &[],
                layered: false,
            },
            Case {
                text: "[origin]\nrefspec=local-ref\n",
                refspec: "local-ref",
                requested: &[],
                local: &[],
                layered: false,
            },
            Case {
                text: "[origin]\nbaserefspec=vendor:os/1\n\n[packages]\nrequested=strace;\n",
                refspec: "vendor:os/1",
                requested: &["strace"],
                local: &[],
                layered: true,
            },
            Case {
                // rpm-ostree writes baserefspec for overrides alone as well.
                text: "[origin]\nbaserefspec=vendor:os/1\n\n[overrides]\nremove=nano;\n",
                refspec: "vendor:os/1",
                requested: &[],
                local: &[],
                layered: true,
            },
            Case {
                text: RPM_OSTREE_COMPLEX,
                refspec: "fedora:fedora/40/x86_64/silverblue",
                requested: &["/usr/bin/htop", "libvirt >= 9", "strace", "vim-enhanced"],
                local: &["foo-1.0-1.x86_64"],
                layered: true,
            },
        ];
        for case in cases {
            let origin = Origin::parse(case.text).unwrap();
            assert_eq!(origin.refspec, case.refspec, "{}", case.text);
            let requested: Vec<_> = origin.requested.iter().map(String::as_str).collect();
            assert_eq!(requested, case.requested, "{}", case.text);
            let local: Vec<_> = origin
                .requested_local
                .keys()
                .map(ToString::to_string)
                .collect();
            assert_eq!(local, case.local, "{}", case.text);
            assert_eq!(origin.is_layered(), case.layered, "{}", case.text);
        }
    }

    #[test]
    fn rejects_bad_origins() {
        let cases = [
            ("garbage that is no key file", "not a valid key file"),
            ("[origin]\n", "no [origin] refspec= or baserefspec= key"),
            (
                "[packages]\nrequested=a;\n",
                "no [origin] refspec= or baserefspec= key",
            ),
            ("[origin]\nrefspec=\n", "the origin's refspec is empty"),
            (
                "[origin]\ncontainer-image-reference=ostree-unverified-registry:quay.io/x\n",
                "container image",
            ),
            (
                "[origin]\nbaserefspec=a:b\n[packages]\nrequested-local=nothex:foo-1-1.noarch;\n",
                "is not SHA256:NEVRA",
            ),
        ];
        for (text, expected) in cases {
            let err = format!("{:#}", Origin::parse(text).unwrap_err());
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn layering_switches_refspec_key_and_back() {
        let mut origin = Origin::parse("[origin]\nrefspec=vendor:os/stable\n").unwrap();
        origin.requested.insert("strace".into());
        origin
            .requested_local
            .insert(Nevra::parse("foo-1.0-1.x86_64").unwrap(), SHA.into());
        let text = origin.to_text();
        assert_eq!(
            text,
            format!(
                "[origin]\nbaserefspec=vendor:os/stable\n\n[packages]\nrequested=strace;\n\
                 requested-local={SHA}:foo-1.0-1.x86_64;\n"
            )
        );

        let mut again = Origin::parse(&text).unwrap();
        assert_eq!(
            again,
            Origin {
                source: text.clone(),
                ..origin
            }
        );
        again.requested.clear();
        again.requested_local.clear();
        // GKeyFile keeps the blank line that separated the dropped group; only the content matters.
        let back: Vec<_> = again
            .to_text()
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        assert_eq!(back, ["[origin]", "refspec=vendor:os/stable"]);
    }

    #[test]
    fn unknown_groups_and_keys_survive_a_rewrite() {
        let mut origin = Origin::parse(RPM_OSTREE_COMPLEX).unwrap();
        origin.requested.remove("strace");
        let text = origin.to_text();
        let reparsed = KeyFile::new();
        reparsed
            .load_from_data(&text, glib::KeyFileFlags::KEEP_COMMENTS)
            .unwrap();
        for (group, key, value) in [
            (
                "origin",
                "override-commit",
                "3c2e1b0f5d2d7a2f1e6b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081",
            ),
            (
                "origin",
                "baserefspec",
                "fedora:fedora/40/x86_64/silverblue",
            ),
            ("rpmostree", "initramfs-args", "-I;/etc/crypttab;"),
            ("overrides", "remove", "firefox;firefox-langpacks;"),
            ("modules", "install", "nodejs:20/default;"),
            ("libostree", "unlocked", "development"),
            (
                "packages",
                "requested",
                "/usr/bin/htop;libvirt >= 9;vim-enhanced;",
            ),
        ] {
            assert_eq!(
                reparsed.value(group, key).unwrap(),
                value,
                "[{group}] {key}"
            );
        }
        assert!(text.contains("# pinned by the admin"), "{text}");
        assert!(!reparsed.has_key("origin", "refspec").unwrap());
    }

    #[test]
    fn list_items_round_trip_through_escaping() {
        let mut origin = Origin::new("vendor:os");
        for item in ["semi;colon", "back\\slash", "inner space", "tab\there"] {
            origin.requested.insert(item.into());
        }
        let reparsed = Origin::parse(&origin.to_text()).unwrap();
        assert_eq!(reparsed.requested, origin.requested);
    }

    /// An origin as rpm-ostree writes it for `override remove` and `override replace` (lists in
    /// its order, a remote replacement pkglayer does not model yet).
    const RPM_OSTREE_OVERRIDES: &str = "\
[origin]
baserefspec=fedora:fedora/40/x86_64/silverblue

[packages]
requested=strace;

[overrides]
remove=firefox;firefox-langpacks;
replace-local=0c7072500af2758e7dc7d7700fed82c3c5f4da7453b4d416e79f75384eee96b0:rpm-ostree-2021.1-2.fc33.x86_64;
replace=repo=updates-testing,systemd;
";

    #[test]
    fn overrides_read_back_as_rpm_ostree_wrote_them() {
        let origin = Origin::parse(RPM_OSTREE_OVERRIDES).unwrap();
        assert_eq!(
            origin.override_remove,
            BTreeSet::from(["firefox".to_string(), "firefox-langpacks".to_string()])
        );
        let replaced: Vec<String> = origin
            .override_replace_local
            .iter()
            .map(|(nevra, sha)| format!("{sha}:{nevra}"))
            .collect();
        assert_eq!(
            replaced,
            [
                "0c7072500af2758e7dc7d7700fed82c3c5f4da7453b4d416e79f75384eee96b0:rpm-ostree-2021.1-2.fc33.x86_64"
            ]
        );
        assert!(origin.is_layered());
        assert_eq!(origin.to_text(), RPM_OSTREE_OVERRIDES);

        assert_eq!(
            origin.override_replace_remote,
            [("updates-testing".to_string(), vec!["systemd".to_string()])]
        );
        // Dropping the removal and the local replacement leaves the remote one: still layered.
        let mut reset = origin.clone();
        reset.override_remove.clear();
        reset.override_replace_local.clear();
        let text = reset.to_text();
        assert!(!text.contains("remove="), "{text}");
        assert!(text.contains("baserefspec="), "{text}");
        assert!(
            text.contains("replace=repo=updates-testing,systemd;"),
            "{text}"
        );
    }

    #[test]
    fn remote_replacements_keep_rpm_ostree_order() {
        let text = "[origin]\nbaserefspec=fedora:fedora/34/x86_64/silverblue\n\n[overrides]\n\
                    replace=repo=foobar,systemd;repo=bazboo,kernel,kernel-core,kernel-modules;\n";
        let origin = Origin::parse(text).unwrap();
        assert_eq!(origin.override_replace_remote.len(), 2);
        assert_eq!(
            origin.override_replace_remote[1].1,
            ["kernel", "kernel-core", "kernel-modules"]
        );
        assert_eq!(origin.to_text(), text);
        let err = Origin::parse("[origin]\nrefspec=a:b\n[overrides]\nreplace=file=x,systemd;\n")
            .unwrap_err();
        assert!(format!("{err:#}").contains("is not repo=ID,PKG"), "{err:#}");
    }

    #[test]
    fn overrides_alone_make_a_layered_origin() {
        let mut origin = Origin::new("vendor:os/stable");
        origin.override_remove.insert("nano".into());
        let text = origin.to_text();
        assert_eq!(
            text,
            "[origin]\nbaserefspec=vendor:os/stable\n\n[overrides]\nremove=nano;\n"
        );
        let mut back = Origin::parse(&text).unwrap();
        back.override_remove.clear();
        let lines: Vec<_> = back
            .to_text()
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        assert_eq!(lines, ["[origin]", "refspec=vendor:os/stable"]);
    }

    #[test]
    fn fresh_origin_is_plain() {
        let origin = Origin::new("vendor:os/stable");
        assert_eq!(origin.to_text(), "[origin]\nrefspec=vendor:os/stable\n");
        assert_eq!(origin.remote(), Some("vendor"));
        assert_eq!(Origin::new("local").remote(), None);
    }
}
