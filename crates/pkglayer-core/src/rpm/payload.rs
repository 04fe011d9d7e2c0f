//! An RPM's payload written as an OSTree tree, with the path rules of [`super::placement`] applied.
//!
//! The payload is read from the file as a stream and each file's bytes go into their content object
//! a chunk at a time, so memory stays bounded whatever the package's size. Each file's bytes are
//! checked against the digest the (already verified) header gives it as they pass, so the tree
//! holds what the header vouches for even if the file changed since its digests were checked. In a
//! hardlink set one member carries the bytes and the others none; those take the object the
//! carrier's bytes made (written again only if their owner or mode differ), so no bytes are kept.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};
use ostree::gio;
use ostree::glib;

use super::Nevra;
use super::archive::{Archive, ArchiveError, Listed};
use super::placement::{self, Placement};
use crate::commit_metadata::NamedOwner;
use crate::error::UserError;
use crate::tree::FileObject;
use crate::users::{Accounts, Kind};

/// What a refused path's hint says.
const PLACEABLE: &str = "layered packages may only ship files under /usr (but /usr/local, which is the machine's), /etc, /opt, /boot (and directories or symlinks under /var and /run)";

/// The written tree of a package.
pub(crate) struct PayloadTree {
    pub root: gio::File,
    /// Files and directories not owned by root:root, for compose to give their IDs.
    pub named_owners: Vec<NamedOwner>,
}

/// Writes the files and directories of the RPM at `path` (of `nevra`), whose verified head is
/// `head`, as OSTree objects and returns the written root. The payload is read after `head`, which
/// is used as it is rather than read again. The header's file list is checked whole before anything
/// is written ([`check_files`]), the archive against it as it passes ([`super::archive`]). Call
/// inside a repo transaction.
pub(crate) fn write(
    repo: &ostree::Repo,
    path: &Path,
    head: &[u8],
    nevra: &Nevra,
    accounts: &Accounts,
) -> Result<PayloadTree> {
    let metadata = ::rpm::PackageMetadata::parse(&mut std::io::Cursor::new(head))
        .context("not a readable RPM")?;
    // A header declaring UTF-8 whose names are not is refused by the parser, naming the tag.
    let entries = metadata.get_file_entries().map_err(|err| {
        UserError::new(format!(
            "package {nevra} is refused: its header's file list cannot be read: {err}"
        ))
        .hint("nothing was imported; file names must be UTF-8; report it to its packager")
    })?;
    let listed = check_files(
        &metadata,
        &entries,
        nevra,
        gio::prelude::FileExt::path(&repo.path()).as_deref(),
    )?;
    let mut writer = TreeWriter::new(repo, nevra)?;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("Opening {}", path.display()))?;
    file.seek(SeekFrom::Start(head.len() as u64))?;
    let refuse = |err: ArchiveError| -> anyhow::Error {
        UserError::new(format!("package {nevra} is refused: {err}"))
            .hint("nothing was imported; the package is damaged or was built to attack the tools that unpack it: report it to its packager")
            .into()
    };
    let mut archive = Archive::new(std::io::BufReader::new(file), &listed).map_err(refuse)?;
    loop {
        let entry = match archive.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(err) => return Err(refuse(err)),
        };
        let mut reader = ArchiveReader {
            archive: &mut archive,
            error: None,
        };
        let result = writer.add(
            &entries[entry.index],
            entry.carries_bytes,
            &mut reader,
            accounts,
        );
        if let Some(err) = reader.error.take() {
            return Err(refuse(err));
        }
        result?;
    }
    writer.finish()
}

/// The header's files as the archive must hold them, once each is known to be one an OSTree tree
/// can hold: refused, before anything is written, are names that are not UTF-8 (rpm's header
/// strings are read lossily, so a U+FFFD stands for bytes that were not) or hold a newline (tmpfiles.d
/// lines, file triggers' stdin and `rpm -ql` are line-based), device nodes, FIFOs and sockets (an
/// OSTree commit holds none), and a package whose files would not fit in the free space of the
/// repo's filesystem (a header declaring a huge size).
fn check_files(
    metadata: &::rpm::PackageMetadata,
    entries: &[::rpm::FileEntry<'_>],
    nevra: &Nevra,
    repo_path: Option<&Path>,
) -> Result<Vec<Listed>> {
    let refuse = |path: &str, why: &str, hint: &str| -> anyhow::Error {
        UserError::new(format!("package {nevra} ships {path}, {why}"))
            .hint(format!("nothing was imported; {hint}"))
            .into()
    };
    let inodes = metadata
        .header
        .get_entry_data_as_u32_array(::rpm::IndexTag::RPMTAG_FILEINODES)
        .unwrap_or_default();
    let mut inode_counts: HashMap<u32, usize> = HashMap::new();
    for (entry, inode) in entries.iter().zip(&inodes) {
        if entry.mode().file_type() == ::rpm::FileType::Regular
            && !entry.flags().contains(::rpm::FileFlags::GHOST)
        {
            *inode_counts.entry(*inode).or_default() += 1;
        }
    }
    let mut total: u64 = 0;
    let mut counted_sets = std::collections::HashSet::new();
    let mut listed = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let path = entry.path().to_string_lossy().into_owned();
        let link = entry.linkto().unwrap_or_default();
        if path.contains('\u{fffd}') || path.chars().chain(link.chars()).any(char::is_control) {
            return Err(refuse(
                &path.escape_debug().to_string(),
                "a name that is not UTF-8 or holds a newline or another control character",
                "file names (and symlink targets) must be UTF-8 without control characters: a \
                 newline would split the lines of tmpfiles.d, file triggers and `rpm -ql`; report it \
                 to its packager",
            ));
        }
        for (kind, name) in [("user", entry.user()), ("group", entry.group())] {
            if !is_account_name(name) {
                return Err(refuse(
                    &path,
                    &format!(
                        "owned by the {kind} {}, a name no account can have",
                        name.escape_debug()
                    ),
                    "account names are letters, digits, `_`, `.` and `-` (and a final `$`); \
                     report it to its packager",
                ));
            }
        }
        let ghost = entry.flags().contains(::rpm::FileFlags::GHOST);
        let kind = entry.mode().file_type();
        if !ghost
            && !matches!(
                kind,
                ::rpm::FileType::Regular | ::rpm::FileType::Dir | ::rpm::FileType::SymbolicLink
            )
        {
            let what = match kind {
                ::rpm::FileType::CharacterDevice => "a character device node",
                ::rpm::FileType::BlockDevice => "a block device node",
                ::rpm::FileType::Fifo => "a FIFO",
                ::rpm::FileType::Socket => "a socket",
                _ => "a special file",
            };
            return Err(refuse(
                &path,
                &format!("{what}, which an OSTree image cannot hold"),
                "device nodes, FIFOs and sockets belong in /dev or /run, made at boot (devtmpfs, udev, \
                 systemd units or tmpfiles.d); report it to its packager",
            ));
        }
        let size = entry.size() as u64;
        let hardlink = kind == ::rpm::FileType::Regular
            && inodes
                .get(index)
                .is_some_and(|inode| inode_counts.get(inode).copied().unwrap_or(0) > 1);
        // A hardlink set's bytes are stored once.
        let first_of_set = !hardlink || counted_sets.insert(inodes[index]);
        if kind == ::rpm::FileType::Regular && !ghost && first_of_set {
            total = total.saturating_add(size);
        }
        listed.push(Listed {
            path,
            mode: u32::from(entry.mode().raw_mode()),
            size,
            link: link.to_string(),
            ghost,
            hardlink: hardlink.then(|| inodes[index]),
        });
    }
    if let Some(free) = repo_path.and_then(free_space)
        && total > free
    {
        return Err(UserError::new(format!(
            "package {nevra} declares {total} bytes of files, more than the {free} bytes free \
             where the repo is"
        ))
        .hint("nothing was imported; free space there, or the package is not what it claims to be")
        .into());
    }
    Ok(listed)
}

/// Whether `name` can be a user or group name (shadow-utils' rule, as the usual `useradd` allows
/// them): it ends up in tmpfiles.d lines and passwd lookups, where a blank or a newline would be read
/// as something else.
fn is_account_name(name: &str) -> bool {
    let body = name.strip_suffix('$').unwrap_or(name);
    !body.is_empty()
        && name.len() <= 256
        && !body.starts_with('-')
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Bytes free to unprivileged writers on the filesystem of `path`.
fn free_space(path: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// A payload entry's data as a reader; an archive error is kept to be reported as it is.
struct ArchiveReader<'r, 'a> {
    archive: &'r mut Archive<'a>,
    error: Option<ArchiveError>,
}

impl Read for ArchiveReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.archive.read(buf).map_err(|err| {
            self.error = Some(err.clone());
            std::io::Error::other(err)
        })
    }
}

/// A payload tree being written.
struct TreeWriter<'a> {
    repo: &'a ostree::Repo,
    nevra: &'a Nevra,
    root: ostree::MutableTree,
    dirmeta: DirMetaCache,
    /// tmpfiles.d lines by path: what `/var`, `/run` and relocated paths become.
    tmpfiles: BTreeMap<String, String>,
    named_owners: Vec<NamedOwner>,
    /// Hardlink members without bytes, written once the member with them is seen.
    pending_links: Vec<PendingLink>,
    /// The content object of each file's bytes by file digest, for hardlink members without bytes.
    objects: HashMap<String, (String, FileObject)>,
}

/// A hardlink member whose bytes another member carries.
struct PendingLink {
    parent: ostree::MutableTree,
    name: String,
    path: String,
    digest: String,
    object: FileObject,
}

impl<'a> TreeWriter<'a> {
    fn new(repo: &'a ostree::Repo, nevra: &'a Nevra) -> Result<Self> {
        let mut dirmeta = DirMetaCache::default();
        let root = ostree::MutableTree::new();
        root.set_metadata_checksum(&dirmeta.get(repo, 0, 0, 0o755)?);
        Ok(TreeWriter {
            repo,
            nevra,
            root,
            dirmeta,
            tmpfiles: BTreeMap::new(),
            named_owners: Vec::new(),
            pending_links: Vec::new(),
            objects: HashMap::new(),
        })
    }

    /// The refusal of `path` of this package, saying `why`.
    fn refuse(&self, path: &str, why: &str) -> anyhow::Error {
        UserError::new(format!("package {} ships {path}, {why}", self.nevra))
            .hint(PLACEABLE)
            .into()
    }

    /// Adds one payload entry.
    /// Adds one payload entry, `meta` in the header, its bytes (if it `carries_bytes`) from `data`.
    fn add(
        &mut self,
        meta: &::rpm::FileEntry<'_>,
        carries_bytes: bool,
        data: &mut impl Read,
        accounts: &Accounts,
    ) -> Result<()> {
        let path = meta.path().to_string_lossy().into_owned();
        if !placement::is_clean(&path) {
            return Err(self.refuse(
                &path,
                "a path with `..`, `.` or empty parts, or not absolute",
            ));
        }
        let kind = meta.mode().file_type();
        let target = match placement::place(&path) {
            Some(Placement::Tree(target)) => target,
            Some(Placement::Tmpfiles) => {
                let line = self.tmpfiles_line(meta, &path)?;
                self.tmpfiles.insert(path, line);
                return Ok(());
            }
            None => {
                return Err(self.refuse(&path, "outside the directories an OSTree image may hold"));
            }
        };
        if let Some((link, line)) = placement::link_back(&path) {
            self.tmpfiles.insert(link, line);
        }
        if (meta.user(), meta.group()) != ("root", "root") {
            self.named_owners.push(NamedOwner {
                path: target.clone(),
                user: meta.user().to_string(),
                group: meta.group().to_string(),
            });
        }
        // Owners the base lacks may be created by this package's own sysusers.d file or %pre;
        // compose settles them. Until then the file is root's.
        let uid = accounts.id(Kind::User, meta.user()).unwrap_or(0);
        let gid = accounts.id(Kind::Group, meta.group()).unwrap_or(0);
        let permissions = u32::from(meta.mode().permissions());
        let (parent_path, name) = crate::tree::split_parent(&target);
        let parent = self.ensure_dirs(parent_path)?;
        match kind {
            ::rpm::FileType::Dir => {
                let dir = match crate::tree::mtree_lookup(&parent, name)? {
                    (_, Some(existing)) => existing,
                    _ => parent.ensure_dir(name)?,
                };
                dir.set_metadata_checksum(&self.dirmeta.get(self.repo, uid, gid, permissions)?);
            }
            ::rpm::FileType::Regular => {
                let object = FileObject {
                    uid,
                    gid,
                    mode: libc::S_IFREG | permissions,
                    xattrs: capabilities_xattr(meta.caps())?,
                };
                let algorithm = meta.digest().map(|d| d.algorithm());
                let digest = meta.digest().map(|d| d.as_hex().to_string());
                let size = meta.size() as u64;
                match digest {
                    // In a hardlink set only one member carries the bytes; the others wait for it.
                    Some(digest) if !carries_bytes && size > 0 => {
                        self.pending_links.push(PendingLink {
                            parent,
                            name: name.to_string(),
                            path,
                            digest,
                            object,
                        });
                    }
                    digest => {
                        let len = if carries_bytes { size } else { 0 };
                        let expected = algorithm.zip(digest.as_deref());
                        let mut checked = CheckedReader::new(data, expected);
                        let checksum =
                            crate::tree::write_file_object(self.repo, &object, len, &mut checked)
                                .with_context(|| format!("Writing {path}"))?;
                        if len > 0 && !checked.matches() {
                            return Err(UserError::new(format!(
                                "the payload of {} holds {path} with other bytes than its header says",
                                self.nevra
                            ))
                            .hint("nothing was imported; the package file is corrupt or was changed while it was read")
                            .into());
                        }
                        parent.replace_file(name, &checksum)?;
                        if let Some(digest) = digest {
                            self.objects.entry(digest).or_insert((checksum, object));
                        }
                    }
                }
            }
            ::rpm::FileType::SymbolicLink => {
                let target = meta.linkto().unwrap_or_default();
                let checksum = self.repo.write_symlink(
                    None,
                    uid,
                    gid,
                    None,
                    target,
                    gio::Cancellable::NONE,
                )?;
                parent.replace_file(name, &checksum)?;
            }
            other => {
                return Err(self.refuse(
                    &path,
                    &format!("a {other:?}, which OSTree trees cannot hold"),
                ));
            }
        }
        Ok(())
    }

    /// The tmpfiles.d line that recreates a directory or symlink of `/var` or `/run` at boot; a
    /// file there is refused.
    fn tmpfiles_line(&self, meta: &::rpm::FileEntry, path: &str) -> Result<String> {
        let permissions = u32::from(meta.mode().permissions());
        match meta.mode().file_type() {
            ::rpm::FileType::Dir => Ok(format!(
                "d {} {permissions:04o} {} {} - -",
                placement::tmpfiles_path(path),
                meta.user(),
                meta.group()
            )),
            ::rpm::FileType::SymbolicLink => Ok(format!(
                "L {} - - - - {}",
                placement::tmpfiles_path(path),
                placement::tmpfiles_argument(meta.linkto().unwrap_or_default())
            )),
            _ => Err(self.refuse(
                path,
                "a file in a directory that belongs to the machine, not the image",
            )),
        }
    }

    /// Writes the waiting hardlink members and the tmpfiles.d file, then the tree.
    fn finish(mut self) -> Result<PayloadTree> {
        for link in std::mem::take(&mut self.pending_links) {
            let (checksum, object) = self.objects.get(&link.digest).ok_or_else(|| {
                self.refuse(&link.path, "a hardlink whose content is not in the payload")
            })?;
            // Members of a set share an inode, so their owner and mode agree; a header that says
            // otherwise gets objects of their own.
            let checksum = if same_object(object, &link.object) {
                checksum.clone()
            } else {
                crate::tree::copy_file_object(self.repo, checksum, &link.object)?
            };
            link.parent.replace_file(&link.name, &checksum)?;
        }
        if !self.tmpfiles.is_empty() {
            let conf: String = self
                .tmpfiles
                .values()
                .map(|line| format!("{line}\n"))
                .collect();
            let dir = self.ensure_dirs("usr/lib/tmpfiles.d")?;
            let checksum = crate::tree::write_root_file(self.repo, conf.as_bytes())?;
            dir.replace_file(&format!("pkglayer-{}.conf", self.nevra.name), &checksum)?;
        }
        Ok(PayloadTree {
            root: self.repo.write_mtree(&self.root, gio::Cancellable::NONE)?,
            named_owners: self.named_owners,
        })
    }

    /// Walks to `path` (relative, `/`-separated) creating directories owned by root, mode 0755.
    fn ensure_dirs(&mut self, path: &str) -> Result<ostree::MutableTree> {
        let mut dir = self.root.clone();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            dir = match crate::tree::mtree_lookup(&dir, part)? {
                (_, Some(existing)) => existing,
                (Some(_), None) => {
                    return Err(UserError::new(format!(
                        "package {} ships files under /{path}, but {part} is a file, not a directory",
                        self.nevra
                    ))
                    .hint("the package contradicts itself; report it to its packager")
                    .into());
                }
                (None, None) => {
                    let created = dir.ensure_dir(part)?;
                    created.set_metadata_checksum(&self.dirmeta.get(self.repo, 0, 0, 0o755)?);
                    created
                }
            };
        }
        Ok(dir)
    }
}

/// A payload file's bytes as they pass, hashed with the algorithm of the digest its header gives.
struct CheckedReader<'r, R> {
    inner: &'r mut R,
    expected: Option<(String, Hasher)>,
}

/// The file digest algorithms rpm writes.
enum Hasher {
    Md5(glib::Checksum),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    Sha3_256(sha3::Sha3_256),
    Sha3_512(sha3::Sha3_512),
}

impl Hasher {
    fn new(algorithm: ::rpm::DigestAlgorithm) -> Self {
        use ::rpm::DigestAlgorithm as A;
        use sha2::Digest;
        match algorithm {
            A::Md5 => {
                Hasher::Md5(glib::Checksum::new(glib::ChecksumType::Md5).expect("glib has MD5"))
            }
            A::Sha2_224 => Hasher::Sha224(sha2::Sha224::new()),
            A::Sha2_256 => Hasher::Sha256(sha2::Sha256::new()),
            A::Sha2_384 => Hasher::Sha384(sha2::Sha384::new()),
            A::Sha2_512 => Hasher::Sha512(sha2::Sha512::new()),
            A::Sha3_256 => Hasher::Sha3_256(sha3::Sha3_256::new()),
            A::Sha3_512 => Hasher::Sha3_512(sha3::Sha3_512::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Sha224(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha384(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
            Hasher::Sha3_256(h) => h.update(bytes),
            Hasher::Sha3_512(h) => h.update(bytes),
        }
    }

    fn hex(self) -> String {
        use sha2::Digest;
        match self {
            Hasher::Md5(h) => h.string().map(|s| s.to_string()).unwrap_or_default(),
            Hasher::Sha224(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha384(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
            Hasher::Sha3_256(h) => hex::encode(h.finalize()),
            Hasher::Sha3_512(h) => hex::encode(h.finalize()),
        }
    }
}

impl<'r, R: Read> CheckedReader<'r, R> {
    /// Reads `inner`, checking against `expected` (the header's algorithm and hex digest), if any.
    fn new(inner: &'r mut R, expected: Option<(::rpm::DigestAlgorithm, &str)>) -> Self {
        CheckedReader {
            inner,
            expected: expected
                .map(|(algorithm, hex)| (hex.to_ascii_lowercase(), Hasher::new(algorithm))),
        }
    }

    /// Whether the bytes read match the header's digest (true when it gives none).
    fn matches(self) -> bool {
        match self.expected {
            Some((expected, hasher)) => hasher.hex() == expected,
            None => true,
        }
    }
}

impl<R: Read> Read for CheckedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some((_, hasher)) = &mut self.expected {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Whether two file objects hold the same owner, mode and xattrs.
fn same_object(a: &FileObject, b: &FileObject) -> bool {
    (a.uid, a.gid, a.mode, &a.xattrs) == (b.uid, b.gid, b.mode, &b.xattrs)
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
    use ::rpm::DigestAlgorithm;

    #[test]
    fn account_names_are_what_useradd_allows() {
        for good in ["root", "systemd-network", "_apt", "svc.1", "machine$"] {
            assert!(is_account_name(good), "{good}");
        }
        for bad in ["", "a b", "x\nL /etc/evil", "-rf", "$", "n\u{e9}", "a:b"] {
            assert!(!is_account_name(bad), "{bad:?}");
        }
    }

    fn matches(bytes: &[u8], expected: Option<(DigestAlgorithm, &str)>) -> bool {
        let mut input = bytes;
        let mut checked = CheckedReader::new(&mut input, expected);
        let mut read = Vec::new();
        checked.read_to_end(&mut read).unwrap();
        assert_eq!(read, bytes, "bytes pass unchanged");
        checked.matches()
    }

    #[test]
    fn file_bytes_are_checked_against_the_header_digest() {
        let md5 = glib::compute_checksum_for_data(glib::ChecksumType::Md5, b"hello\n")
            .unwrap()
            .to_string();
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"hello\n"));
        for (algorithm, expected) in [
            (DigestAlgorithm::Md5, md5),
            (DigestAlgorithm::Sha2_256, sha256),
        ] {
            assert!(matches(b"hello\n", Some((algorithm, &expected))));
            assert!(matches(
                b"hello\n",
                Some((algorithm, &expected.to_uppercase()))
            ));
            assert!(!matches(b"hellO\n", Some((algorithm, &expected))));
        }
        assert!(
            matches(b"anything", None),
            "no digest, nothing to hold against it"
        );
    }
}
