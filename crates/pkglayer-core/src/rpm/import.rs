//! The package cache: each RPM imported once into the sysroot's repo as its own parentless commit.
//!
//! The ref is `pkglayer/pkg/<name>/<evr>.<arch>` (bytes outside `[A-Za-z0-9.-]` escaped as `_XX`, `_`
//! as `__`) for a package from a repo, `pkglayer/local/<sha256 of the file>` for a local one. The commit's tree is the payload with OSTree's path rules applied, and its metadata keeps
//! what later steps need without the RPM file: the RPM's lead, signature and header ("head", enough
//! for `rpm --justdb`), the sha256 of the file, the NEVRA, and the repo it came from.
//!
//! Path rules: `/etc` → `/usr/etc` (ostree's 3-way merge then handles it); `/boot` →
//! `/usr/lib/ostree-boot`; `/opt` → `/usr/lib/opt` and `/usr/local` → `/usr/lib/usrlocal`, each with a
//! tmpfiles.d symlink back; directories and symlinks in `/var` and `/run` become tmpfiles.d lines;
//! files there, and anything else outside `/usr`, are refused naming the package and path.

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;

use anyhow::{Context, Result, bail};
use fn_error_context::context;
use ostree::gio;
use ostree::glib;
use ostree::glib::prelude::*;
use sha2::Digest;

use super::Nevra;
use super::digests::DigestError;
use crate::error::UserError;

/// Commit metadata keys of a cached package.
pub const META_NEVRA: &str = "pkglayer.nevra";
pub const META_HEAD: &str = "pkglayer.rpm-head";
pub const META_HEAD_SHA256: &str = "pkglayer.rpm-head-sha256";
pub const META_SHA256: &str = "pkglayer.rpm-sha256";
pub const META_REPO: &str = "pkglayer.repo";
pub const META_REPO_CHECKSUM: &str = "pkglayer.repo-checksum";
/// `(tree path, user, group)` of every file and directory not owned by root:root. Compose gives them
/// their IDs from the final tree, where users created by the layering itself exist.
pub const META_OWNERS: &str = "pkglayer.owners";

/// An entry of [`META_OWNERS`]: tree path, user name, group name.
pub type NamedOwner = (String, String, String);

/// Where an RPM came from, recorded with it.
#[derive(Debug, Clone, Default)]
pub struct PackageOrigin {
    pub repo: String,
    pub repo_checksum: String,
}

/// A package in the cache.
#[derive(Debug, Clone)]
pub struct CachedPackage {
    pub nevra: Nevra,
    pub commit: String,
    /// sha256 of the RPM file.
    pub sha256: String,
}

/// User and group names of the base tree, to give files their numeric owners.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
}

impl Owners {
    /// From passwd and group text (`name:x:id:…` lines).
    pub fn from_files(passwd: &str, group: &str) -> Self {
        let parse = |text: &str| {
            text.lines()
                .filter_map(|line| {
                    let mut fields = line.split(':');
                    let name = fields.next()?;
                    let id = fields.nth(1)?.parse().ok()?;
                    Some((name.to_string(), id))
                })
                .collect::<HashMap<String, u32>>()
        };
        Owners {
            users: parse(passwd),
            groups: parse(group),
        }
    }

    /// The passwd and group files of `commit` (`usr/etc/…`, plus nss-altfiles' `usr/lib/…`).
    pub fn of_commit(repo: &ostree::Repo, commit: &str) -> Result<Self> {
        let read = |name: &str| -> Result<String> {
            let mut text = String::new();
            for dir in ["usr/etc", "usr/lib"] {
                if let Some(bytes) = crate::tree::read_file(repo, commit, &format!("{dir}/{name}"))?
                {
                    text.push_str(&String::from_utf8_lossy(&bytes));
                    text.push('\n');
                }
            }
            Ok(text)
        };
        Ok(Self::from_files(&read("passwd")?, &read("group")?))
    }

    fn uid(&self, name: &str) -> Option<u32> {
        if name == "root" {
            return Some(0);
        }
        self.users.get(name).copied()
    }

    fn gid(&self, name: &str) -> Option<u32> {
        if name == "root" {
            return Some(0);
        }
        self.groups.get(name).copied()
    }
}

/// The cache ref of a package.
pub fn cache_ref(nevra: &Nevra) -> String {
    format!(
        "pkglayer/pkg/{}/{}",
        escape_ref_component(&nevra.name),
        escape_ref_component(&format!("{}.{}", nevra.evr(), nevra.arch))
    )
}

/// The cache ref of a local package: the sha256 of its file.
pub fn local_ref(sha256: &str) -> String {
    format!("{LOCAL_REFS}{sha256}")
}

/// The ref namespace of local packages.
pub const LOCAL_REFS: &str = "pkglayer/local/";

/// `[A-Za-z0-9.-]` as is, `_` as `__`, every other byte as `_XX`.
fn escape_ref_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' => out.push(byte as char),
            b'_' => out.push_str("__"),
            other => out.push_str(&format!("_{other:02X}")),
        }
    }
    out
}

/// The cached package for `nevra`, if it was imported before.
pub fn lookup(repo: &ostree::Repo, nevra: &Nevra) -> Result<Option<CachedPackage>> {
    let Some(commit) = repo.resolve_rev(&cache_ref(nevra), true)? else {
        return Ok(None);
    };
    let metadata = commit_metadata(repo, &commit)?;
    Ok(Some(CachedPackage {
        nevra: nevra.clone(),
        sha256: metadata.lookup::<String>(META_SHA256)?.unwrap_or_default(),
        commit: commit.to_string(),
    }))
}

/// The cached local package whose file has digest `sha256`, if it was imported before.
pub fn lookup_local(
    repo: &ostree::Repo,
    nevra: &Nevra,
    sha256: &str,
) -> Result<Option<CachedPackage>> {
    let Some(commit) = repo.resolve_rev(&local_ref(sha256), true)? else {
        return Ok(None);
    };
    Ok(Some(CachedPackage {
        nevra: nevra.clone(),
        sha256: sha256.to_string(),
        commit: commit.to_string(),
    }))
}

/// The RPM head (lead, signature, header) stored with a cached package.
pub fn head(repo: &ostree::Repo, commit: &str) -> Result<Vec<u8>> {
    commit_metadata(repo, commit)?
        .lookup::<Vec<u8>>(META_HEAD)?
        .with_context(|| format!("cached package commit {commit} has no RPM header"))
}

fn commit_metadata(repo: &ostree::Repo, commit: &str) -> Result<glib::VariantDict> {
    let (variant, _) = repo.load_commit(commit)?;
    Ok(glib::VariantDict::new(Some(&variant.child_value(0))))
}

/// Imports the RPM in `bytes` into the cache and returns it. Writes only new objects and one ref.
#[context("Importing {}", expected.map(|n| n.to_string()).unwrap_or_else(|| "an RPM".into()))]
pub fn import_rpm(
    repo: &ostree::Repo,
    bytes: &[u8],
    expected: Option<&Nevra>,
    owners: &Owners,
    origin: &PackageOrigin,
) -> Result<CachedPackage> {
    let layout = super::header_check::check(bytes).context("not a readable RPM")?;
    let package = ::rpm::Package::parse(&mut Cursor::new(bytes)).context("not a readable RPM")?;
    let header = &package.metadata;
    let nevra = Nevra::of_header(header)?;
    if let Some(expected) = expected.filter(|e| **e != nevra) {
        bail!("the file holds {nevra}, not {expected}");
    }
    // The RPM's own digests: a file altered after it was built is refused, whatever the repo
    // metadata says of it. Only a digest it carries and fails is a sign of that.
    super::digests::verify(bytes, layout, &package).map_err(|err| match err {
        DigestError::Mismatch(why) => UserError::new(format!(
            "the RPM of {nevra} is corrupt or was tampered with: {why}"
        ))
        .hint("nothing was imported; report it to the repository's owner"),
        DigestError::Missing => UserError::new(format!(
            "the RPM of {nevra} carries no digest of its header, so nothing tells whether it is intact"
        ))
        .hint("nothing was imported; rebuild the package with rpmbuild, which records its digests"),
    })?;
    let head = &bytes[..layout.header_end];
    let sha256 = hex::encode(sha2::Sha256::digest(bytes));

    repo.prepare_transaction(gio::Cancellable::NONE)?;
    let result = write_package_tree(repo, &package, &nevra, owners).and_then(|(root, named)| {
        let metadata = glib::VariantDict::new(None);
        metadata.insert(META_OWNERS, named);
        metadata.insert(META_NEVRA, nevra.to_string());
        metadata.insert(META_HEAD, head.to_vec());
        metadata.insert(META_HEAD_SHA256, hex::encode(sha2::Sha256::digest(head)));
        metadata.insert(META_SHA256, sha256.clone());
        metadata.insert(META_REPO, origin.repo.clone());
        metadata.insert(META_REPO_CHECKSUM, origin.repo_checksum.clone());
        let root = root
            .downcast::<ostree::RepoFile>()
            .expect("write_mtree returns a RepoFile");
        let commit = repo.write_commit_with_time(
            None,
            Some(&nevra.to_string()),
            None,
            Some(&metadata.end()),
            &root,
            0,
            gio::Cancellable::NONE,
        )?;
        // A local package is its file: two builds with one NEVRA are two packages.
        let ref_name = if origin.repo == crate::solver::LOCAL_REPO {
            local_ref(&sha256)
        } else {
            cache_ref(&nevra)
        };
        repo.transaction_set_ref(None, &ref_name, Some(&commit));
        repo.commit_transaction(gio::Cancellable::NONE)?;
        Ok(commit.to_string())
    });
    let commit = match result {
        Ok(commit) => commit,
        Err(err) => {
            let _ = repo.abort_transaction(gio::Cancellable::NONE);
            return Err(err);
        }
    };
    Ok(CachedPackage {
        nevra,
        commit,
        sha256,
    })
}

/// Where a payload path goes in the tree.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// At this path (relative, no leading slash).
    Tree(String),
    /// Not in the tree: a tmpfiles.d line recreates it at boot.
    Tmpfiles,
}

/// Applies the path rules to an absolute payload path. Planning applies them too, to the repo's
/// file lists, to refuse a package before downloading it.
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

/// Writes the package's files and directories as OSTree objects and returns the written root.
fn write_package_tree(
    repo: &ostree::Repo,
    package: &::rpm::Package,
    nevra: &Nevra,
    owners: &Owners,
) -> Result<(gio::File, Vec<NamedOwner>)> {
    let mut named_owners = Vec::new();
    let mut dirmeta = DirMetaCache::default();
    let root = ostree::MutableTree::new();
    root.set_metadata_checksum(&dirmeta.get(repo, 0, 0, 0o755)?);
    let mut tmpfiles: BTreeMap<String, String> = BTreeMap::new();
    // Contents by file digest, for hardlink members written after the one carrying the bytes.
    let mut contents: HashMap<String, Vec<u8>> = HashMap::new();
    let mut pending_links = Vec::new();
    let refuse = |path: &str, why: &str| -> anyhow::Error {
        UserError::new(format!("package {nevra} ships {path}, {why}"))
            .hint("layered packages may only ship files under /usr, /etc, /opt, /boot (and directories or symlinks under /var and /run)")
            .into()
    };

    for entry in package.files()? {
        let entry = entry?;
        let meta = &entry.metadata;
        let path = meta.path().to_string_lossy().into_owned();
        if meta.flags().contains(::rpm::FileFlags::GHOST) {
            continue;
        }
        // Only clean absolute paths: `..` or `.` could climb out of the directory they name.
        let clean = path.strip_prefix('/').is_some_and(|relative| {
            relative
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..")
        });
        if !clean {
            return Err(refuse(
                &path,
                "a path with `..`, `.` or empty parts, or not absolute",
            ));
        }
        let mode = meta.mode();
        let kind = mode.file_type();
        // Owners the base lacks may be created by this package's own sysusers.d file or %pre;
        // compose settles them. Until then the file is root's.
        let uid = owners.uid(meta.user()).unwrap_or(0);
        let gid = owners.gid(meta.group()).unwrap_or(0);
        let permissions = u32::from(mode.permissions());

        let target = match place(&path) {
            Some(Placement::Tree(target)) => target,
            Some(Placement::Tmpfiles) => {
                let line = match kind {
                    ::rpm::FileType::Dir => format!(
                        "d {path} {permissions:04o} {} {} - -",
                        meta.user(),
                        meta.group()
                    ),
                    ::rpm::FileType::SymbolicLink => {
                        format!("L {path} - - - - {}", meta.linkto().unwrap_or_default())
                    }
                    _ => {
                        return Err(refuse(
                            &path,
                            "a file in a directory that belongs to the machine, not the image",
                        ));
                    }
                };
                tmpfiles.insert(path.clone(), line);
                continue;
            }
            None => {
                return Err(refuse(
                    &path,
                    "outside the directories an OSTree image may hold",
                ));
            }
        };
        if let Some(top) = path
            .strip_prefix("/opt/")
            .map(|rest| rest.split('/').next().unwrap_or(rest))
        {
            tmpfiles.insert(
                format!("/opt/{top}"),
                format!("L /opt/{top} - - - - /usr/lib/opt/{top}"),
            );
        }
        if path == "/usr/local" || path.starts_with("/usr/local/") {
            tmpfiles.insert(
                "/usr/local".into(),
                "L /usr/local - - - - /usr/lib/usrlocal".into(),
            );
        }

        if (meta.user(), meta.group()) != ("root", "root")
            && matches!(kind, ::rpm::FileType::Dir | ::rpm::FileType::Regular)
        {
            named_owners.push((
                target.clone(),
                meta.user().to_string(),
                meta.group().to_string(),
            ));
        }
        let (parent_path, name) = match target.rsplit_once('/') {
            Some((parent, name)) => (parent, name),
            None => ("", target.as_str()),
        };
        let parent = ensure_dirs(repo, &root, parent_path, &mut dirmeta)?;
        match kind {
            ::rpm::FileType::Dir => {
                let dir = match crate::tree::mtree_lookup(&parent, name)? {
                    (_, Some(existing)) => existing,
                    _ => parent.ensure_dir(name)?,
                };
                dir.set_metadata_checksum(&dirmeta.get(repo, uid, gid, permissions)?);
            }
            ::rpm::FileType::Regular => {
                let file = RegularFile {
                    uid,
                    gid,
                    mode: libc::S_IFREG | permissions,
                    xattrs: capabilities_xattr(meta.caps())?,
                };
                let digest = meta.digest().map(|d| d.as_hex().to_string());
                match (entry.content(), digest) {
                    // In a hardlink set only one member carries the bytes; the others wait for it.
                    (None, Some(digest)) if meta.size() > 0 => {
                        pending_links.push((
                            parent.clone(),
                            name.to_string(),
                            path.clone(),
                            digest,
                            file,
                        ));
                    }
                    (content, digest) => {
                        let content = content.unwrap_or_default();
                        if let Some(digest) = digest {
                            contents.entry(digest).or_insert_with(|| content.to_vec());
                        }
                        parent.replace_file(name, &file.write(repo, content)?)?;
                    }
                }
            }
            ::rpm::FileType::SymbolicLink => {
                let target = meta.linkto().unwrap_or_default();
                let checksum =
                    repo.write_symlink(None, uid, gid, None, target, gio::Cancellable::NONE)?;
                parent.replace_file(name, &checksum)?;
            }
            other => {
                return Err(refuse(
                    &path,
                    &format!("a {other:?}, which OSTree trees cannot hold"),
                ));
            }
        }
    }

    for (parent, name, path, digest, file) in pending_links {
        let content = contents
            .get(&digest)
            .ok_or_else(|| refuse(&path, "a hardlink whose content is not in the payload"))?;
        parent.replace_file(&name, &file.write(repo, content)?)?;
    }

    if !tmpfiles.is_empty() {
        let conf: String = tmpfiles.values().map(|line| format!("{line}\n")).collect();
        let dir = ensure_dirs(repo, &root, "usr/lib/tmpfiles.d", &mut dirmeta)?;
        let checksum = repo.write_regfile_inline(
            None,
            0,
            0,
            libc::S_IFREG | 0o644,
            None,
            conf.as_bytes(),
            gio::Cancellable::NONE,
        )?;
        dir.replace_file(&format!("pkglayer-{}.conf", nevra.name), &checksum)?;
    }
    Ok((
        repo.write_mtree(&root, gio::Cancellable::NONE)?,
        named_owners,
    ))
}

/// What a regular file becomes in the repo besides its bytes.
struct RegularFile {
    uid: u32,
    gid: u32,
    /// Full `st_mode`.
    mode: u32,
    xattrs: Option<glib::Variant>,
}

impl RegularFile {
    /// Writes the content object; identical files (hardlinks too) get the same object.
    fn write(&self, repo: &ostree::Repo, content: &[u8]) -> Result<String> {
        let checksum = repo.write_regfile_inline(
            None,
            self.uid,
            self.gid,
            self.mode,
            self.xattrs.as_ref(),
            content,
            gio::Cancellable::NONE,
        )?;
        Ok(checksum.to_string())
    }
}

/// `security.capability` xattr from rpm's textual capabilities (`cap_net_raw=ep`).
fn capabilities_xattr(caps: Option<&str>) -> Result<Option<glib::Variant>> {
    let Some(caps) = caps.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    let value = super::caps::encode(caps)?;
    let xattrs: Vec<(Vec<u8>, Vec<u8>)> = vec![(b"security.capability\0".to_vec(), value)];
    Ok(Some(glib::Variant::from(xattrs)))
}

/// Walks to `path` (relative, `/`-separated) creating directories owned by root, mode 0755.
fn ensure_dirs(
    repo: &ostree::Repo,
    root: &ostree::MutableTree,
    path: &str,
    dirmeta: &mut DirMetaCache,
) -> Result<ostree::MutableTree> {
    let mut dir = root.clone();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        dir = match crate::tree::mtree_lookup(&dir, part)? {
            (_, Some(existing)) => existing,
            (Some(_), None) => bail!("{path}: {part} is a file, not a directory"),
            (None, None) => {
                let created = dir.ensure_dir(part)?;
                created.set_metadata_checksum(&dirmeta.get(repo, 0, 0, 0o755)?);
                created
            }
        };
    }
    Ok(dir)
}

/// Directory metadata objects, written once per (uid, gid, mode).
#[derive(Default)]
struct DirMetaCache(HashMap<(u32, u32, u32), String>);

impl DirMetaCache {
    fn get(&mut self, repo: &ostree::Repo, uid: u32, gid: u32, mode: u32) -> Result<String> {
        if let Some(checksum) = self.0.get(&(uid, gid, mode)) {
            return Ok(checksum.clone());
        }
        let checksum = crate::tree::write_dirmeta(repo, uid, gid, mode)?;
        self.0.insert((uid, gid, mode), checksum.clone());
        Ok(checksum)
    }
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
    fn refs_escape_what_refs_cannot_hold() {
        let nevra = Nevra::parse("python3_foo+bar-1:2.0~rc1-3.fc40.x86_64").unwrap();
        assert_eq!(
            cache_ref(&nevra),
            "pkglayer/pkg/python3__foo_2Bbar/1_3A2.0_7Erc1-3.fc40.x86__64"
        );
    }

    #[test]
    fn owners_come_from_passwd_and_group() {
        let owners = Owners::from_files(
            "root:x:0:0::/root:/bin/sh\nsshd:x:74:74::/:/sbin/nologin\n",
            "wheel:x:10:\n",
        );
        assert_eq!(owners.uid("root"), Some(0));
        assert_eq!(owners.uid("sshd"), Some(74));
        assert_eq!(owners.gid("wheel"), Some(10));
        assert_eq!(owners.uid("nobody"), None);
    }
}
