//! Reading files straight out of an OSTree commit, without checking it out, and writing the objects
//! of trees being built.

use std::path::Path;

use anyhow::{Context, Result, bail};
use ostree::gio;
use ostree::gio::prelude::*;
use ostree::glib;

/// The contents of the regular file at `path` (relative to the tree's root) in `commit`, or `None`
/// when there is no such file. Symlinks are not followed.
pub fn read_file(repo: &ostree::Repo, commit: &str, path: &str) -> Result<Option<Vec<u8>>> {
    let (root, _) = repo.read_commit(commit, gio::Cancellable::NONE)?;
    let file = root.resolve_relative_path(path);
    if file.query_file_type(
        gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
        gio::Cancellable::NONE,
    ) != gio::FileType::Regular
    {
        return Ok(None);
    }
    let mut contents = Vec::new();
    std::io::copy(&mut open(repo, &file)?, &mut contents)
        .with_context(|| format!("Reading {path} of commit {commit}"))?;
    Ok(Some(contents))
}

/// The entries of a directory of a commit (from `read_commit`): name and type, symlinks not followed.
pub fn children(dir: &gio::File) -> Result<Vec<(String, gio::FileType)>> {
    let mut entries = Vec::new();
    for info in dir.enumerate_children(
        "standard::name,standard::type",
        gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
        gio::Cancellable::NONE,
    )? {
        let info = info?;
        entries.push((info.name().to_string_lossy().into_owned(), info.file_type()));
    }
    Ok(entries)
}

/// Copies the regular file `file` of a commit (from `read_commit`) to `dest`.
pub fn copy_file_out(repo: &ostree::Repo, file: &gio::File, dest: &Path) -> Result<()> {
    let mut out =
        std::fs::File::create(dest).with_context(|| format!("Creating {}", dest.display()))?;
    std::io::copy(&mut open(repo, file)?, &mut out)
        .with_context(|| format!("Writing {}", dest.display()))?;
    Ok(())
}

fn open(repo: &ostree::Repo, file: &gio::File) -> Result<impl std::io::Read> {
    let checksum = file
        .downcast_ref::<ostree::RepoFile>()
        .context("a commit's file is an ostree RepoFile")?
        .checksum();
    let (input, _, _) = repo.load_file(&checksum, gio::Cancellable::NONE)?;
    Ok(input.context("a regular file has content")?.into_read())
}

/// The `VERSION_ID` of the tree's os-release (`usr/lib/os-release`, else `usr/etc/os-release`).
pub fn os_release_version_id(repo: &ostree::Repo, commit: &str) -> Result<Option<String>> {
    os_release_field(repo, commit, "VERSION_ID")
}

/// The value of `key` in the tree's os-release (`usr/lib/os-release`, else `usr/etc/os-release`).
pub fn os_release_field(repo: &ostree::Repo, commit: &str, key: &str) -> Result<Option<String>> {
    for path in ["usr/lib/os-release", "usr/etc/os-release"] {
        if let Some(bytes) = read_file(repo, commit, path)? {
            let text = String::from_utf8_lossy(&bytes);
            return Ok(os_release_value(&text, key));
        }
    }
    Ok(None)
}

/// The value of `key` in os-release text, unquoted.
fn os_release_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches(['"', '\'']).to_string())
    })
}

/// What `name` is in a mutable tree: a file (its checksum), a directory, or nothing. libostree reports
/// a missing name as a NOT_FOUND error; here it is `(None, None)`.
pub fn mtree_lookup(
    tree: &ostree::MutableTree,
    name: &str,
) -> Result<(Option<String>, Option<ostree::MutableTree>)> {
    match tree.lookup(name) {
        Ok((file, dir)) => Ok((file.map(|f| f.to_string()), dir)),
        Err(err) if err.matches(gio::IOErrorEnum::NotFound) => Ok((None, None)),
        Err(err) => Err(err.into()),
    }
}

/// The directory at `path` (relative, `/`-separated) of a mutable tree, or `None` when a part is
/// missing or not a directory. Steps down by lookups: they load lazily-read directories the way
/// later edits need (libostree's `walk` does not mark a lazily-loaded parent as changed).
pub fn mtree_dir(tree: &ostree::MutableTree, path: &str) -> Result<Option<ostree::MutableTree>> {
    let mut dir = tree.clone();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        match mtree_lookup(&dir, part)?.1 {
            Some(next) => dir = next,
            None => return Ok(None),
        }
    }
    Ok(Some(dir))
}

/// `path` split into its parent directory and its last part.
pub fn split_parent(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// The contents of the regular file at `path` of a mutable tree, or `None` when there is none.
pub fn mtree_read_file(
    repo: &ostree::Repo,
    tree: &ostree::MutableTree,
    path: &str,
) -> Result<Option<Vec<u8>>> {
    let (parent, name) = split_parent(path);
    let Some(dir) = mtree_dir(tree, parent)? else {
        return Ok(None);
    };
    let Some(checksum) = mtree_lookup(&dir, name)?.0 else {
        return Ok(None);
    };
    let (input, info, _) = repo.load_file(&checksum, gio::Cancellable::NONE)?;
    if info.file_type() != gio::FileType::Regular {
        return Ok(None);
    }
    let mut contents = Vec::new();
    if let Some(input) = input {
        std::io::copy(&mut input.into_read(), &mut contents)?;
    }
    Ok(Some(contents))
}

/// What a regular file's content object holds besides its bytes.
#[derive(Debug, Clone)]
pub struct FileObject {
    pub uid: u32,
    pub gid: u32,
    /// The whole `st_mode`, file type included.
    pub mode: u32,
    /// `a(ayay)`, or none.
    pub xattrs: Option<glib::Variant>,
}

/// Bytes a file is copied by: memory stays this, whatever the file's size.
const COPY_CHUNK: usize = 64 * 1024;

/// Writes the content object of a regular file of `len` bytes read from `reader`, a chunk at a time,
/// and returns its checksum. `reader` must give exactly `len` bytes.
pub fn write_file_object(
    repo: &ostree::Repo,
    object: &FileObject,
    len: u64,
    reader: &mut impl std::io::Read,
) -> Result<String> {
    let writer = repo.write_regfile(
        None,
        object.uid,
        object.gid,
        object.mode,
        len,
        object.xattrs.as_ref(),
    )?;
    let mut buffer = vec![0u8; COPY_CHUNK];
    let mut written = 0u64;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        written += n as u64;
        if written > len {
            bail!("the file is longer than the {len} bytes it declares");
        }
        writer.write_all(&buffer[..n], gio::Cancellable::NONE)?;
    }
    if written != len {
        bail!("the file has {written} bytes, not the {len} it declares");
    }
    Ok(writer.finish(gio::Cancellable::NONE)?.to_string())
}

/// Writes the regular file at `path` of the filesystem as a file object, a chunk at a time; returns
/// its checksum.
pub fn write_file_object_from(
    repo: &ostree::Repo,
    object: &FileObject,
    path: &Path,
) -> Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("Opening {}", path.display()))?;
    let len = file.metadata()?.len();
    write_file_object(repo, object, len, &mut std::io::BufReader::new(file))
        .with_context(|| format!("Writing {} into the repo", path.display()))
}

/// Writes the content of the file object `checksum` again as a file object with `object`'s owner,
/// mode and xattrs, a chunk at a time; returns the new checksum.
pub fn copy_file_object(
    repo: &ostree::Repo,
    checksum: &str,
    object: &FileObject,
) -> Result<String> {
    let (input, info, _) = repo.load_file(checksum, gio::Cancellable::NONE)?;
    let len = u64::try_from(info.size()).context("a file object has a size")?;
    match input {
        Some(input) => write_file_object(repo, object, len, &mut input.into_read()),
        None => write_file_object(repo, object, 0, &mut std::io::empty()),
    }
}

/// Writes `contents` as the content object of a regular file owned by root, mode 0644 (what
/// pkglayer itself adds to a tree: tmpfiles.d lines, accounts, the rpm database) and returns its
/// checksum.
pub fn write_root_file(repo: &ostree::Repo, contents: &[u8]) -> Result<String> {
    Ok(repo
        .write_regfile_inline(
            None,
            0,
            0,
            libc::S_IFREG | 0o644,
            None,
            contents,
            gio::Cancellable::NONE,
        )?
        .to_string())
}

/// Writes the directory metadata object for a directory owned by `uid`:`gid` with permission bits
/// `mode` (no xattrs) and returns its checksum.
pub fn write_dirmeta(repo: &ostree::Repo, uid: u32, gid: u32, mode: u32) -> Result<String> {
    let info = gio::FileInfo::new();
    info.set_file_type(gio::FileType::Directory);
    info.set_attribute_uint32("unix::uid", uid);
    info.set_attribute_uint32("unix::gid", gid);
    info.set_attribute_uint32("unix::mode", libc::S_IFDIR | mode);
    let variant = ostree::create_directory_metadata(&info, None);
    Ok(repo
        .write_metadata(
            ostree::ObjectType::DirMeta,
            None,
            &variant,
            gio::Cancellable::NONE,
        )?
        .to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_os_release_values() {
        let text = "NAME=\"Fedora Linux\"\nVERSION_ID=40\nID='fedora'\n# VERSION_ID=1\n";
        assert_eq!(os_release_value(text, "VERSION_ID").as_deref(), Some("40"));
        assert_eq!(os_release_value(text, "ID").as_deref(), Some("fedora"));
        assert_eq!(
            os_release_value(text, "NAME").as_deref(),
            Some("Fedora Linux")
        );
        assert_eq!(os_release_value(text, "VARIANT"), None);
    }
}
