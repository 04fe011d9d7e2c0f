//! Packages' file lists from a repo's filelists metadata (`filelists.xml`), read as a stream.
//!
//! Planning uses them to refuse a package with files an OSTree image cannot hold before it is
//! downloaded: filelists are the only metadata listing every file of every package. They are also
//! the largest (CentOS Stream's AppStream: over 100 MB of XML), so the file is decompressed and
//! parsed as a stream and only the lists of the packages asked for are kept: memory follows those
//! packages, not the repo. Reading stops as soon as every package asked for has been seen.
//!
//! The format, as createrepo_c writes it:
//!
//! ```xml
//! <filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="1">
//!   <package pkgid="…" name="strace" arch="x86_64">
//!     <version epoch="0" ver="6.1" rel="1.fc40"/>
//!     <file>/usr/bin/strace</file>
//!     <file type="dir">/usr/share/strace</file>
//!     <file type="ghost">/var/log/strace.log</file>
//!   </package>
//! </filelists>
//! ```

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result, bail};
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::QName;
use quick_xml::{Reader, XmlVersion};

use crate::rpm::Nevra;

/// What a file list entry is. Regular files and symlinks look alike in filelists (no `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A regular file or a symlink.
    File,
    Dir,
    /// `%ghost`: owned by the package, not in its payload.
    Ghost,
}

/// One entry of a package's file list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub(crate) kind: FileKind,
    /// Absolute path, as the package's header gives it.
    pub path: String,
}

/// Opens a (possibly compressed) metadata file as a stream of its XML. The compression is told by
/// the file's first bytes, not its name: gzip, xz, zstd, bzip2, or none.
pub fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    // Large buffers: the decoders and the XML reader then make few calls each.
    const BUFFER: usize = 128 * 1024;
    let file = File::open(path).with_context(|| format!("Opening {}", path.display()))?;
    let mut file = BufReader::with_capacity(BUFFER, file);
    let magic = file
        .fill_buf()
        .with_context(|| format!("Reading {}", path.display()))?;
    let decoded: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(file))
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(file))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(file)?)
    } else if magic.starts_with(b"BZh") {
        Box::new(bzip2::bufread::MultiBzDecoder::new(file))
    } else {
        return Ok(Box::new(file));
    };
    Ok(Box::new(BufReader::with_capacity(BUFFER, decoded)))
}

/// Reads the file lists of the packages in `wanted` from `xml` (a filelists document), matching
/// name, epoch, version, release and architecture. Packages the document does not list are absent
/// from the answer; of a package listed twice, the first list counts. Reading stops once every
/// wanted package has been read, so what follows the last of them is never looked at.
pub fn read(xml: impl BufRead, wanted: &HashSet<Nevra>) -> Result<HashMap<Nevra, Vec<FileEntry>>> {
    let mut reader = Reader::from_reader(xml);
    let mut scan = Scan {
        wanted,
        names: wanted.iter().map(|n| n.name.as_str()).collect(),
        found: HashMap::new(),
        package: None,
        current: None,
        file: None,
    };
    if wanted.is_empty() {
        return Ok(scan.found);
    }
    let mut buf = Vec::new();
    let mut skipped = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .with_context(|| format!("at byte {} of the XML", reader.error_position()))?;
        let step = scan
            .step(event)
            .with_context(|| format!("at byte {} of the XML", reader.buffer_position()))?;
        match step {
            Step::Next => {}
            Step::SkipPackage => {
                reader
                    .read_to_end_into(QName("package"), &mut skipped)
                    .with_context(|| format!("at byte {} of the XML", reader.error_position()))?;
            }
            Step::Done => return Ok(scan.found),
            Step::Truncated => bail!("the XML ends before </filelists>"),
        }
        buf.clear();
    }
}

/// What the reader does after an event.
enum Step {
    Next,
    /// Read past the end of the current `<package>` without looking at it.
    SkipPackage,
    /// Every wanted package was read, or the document ended.
    Done,
    /// The document ended early.
    Truncated,
}

/// The state of a read: what is wanted, what was found, and where in a package the reader is.
struct Scan<'a> {
    wanted: &'a HashSet<Nevra>,
    /// Names of the wanted packages: most packages are skipped on their name alone.
    names: HashSet<&'a str>,
    found: HashMap<Nevra, Vec<FileEntry>>,
    /// The package being read, before its `<version>`: name and arch.
    package: Option<(String, String)>,
    /// The wanted package being read, after its `<version>`, and its files so far.
    current: Option<(Nevra, Vec<FileEntry>)>,
    /// The `<file>` being read: its kind and its text so far (each escape is an event of its own).
    file: Option<(FileKind, String)>,
}

impl Scan<'_> {
    fn step(&mut self, event: Event) -> Result<Step> {
        match event {
            Event::Start(element) if element.name() == QName("package") => {
                let name = attribute(&element, "name")?;
                if !self.names.contains(name.as_str()) {
                    return Ok(Step::SkipPackage);
                }
                self.package = Some((name, attribute(&element, "arch")?));
            }
            Event::Start(element) | Event::Empty(element) if element.name() == QName("version") => {
                let Some((name, arch)) = self.package.take() else {
                    return Ok(Step::Next);
                };
                let epoch = match optional_attribute(&element, "epoch")? {
                    Some(epoch) if !epoch.is_empty() => epoch
                        .parse()
                        .with_context(|| format!("epoch {epoch:?} of {name} is not a number"))?,
                    _ => 0,
                };
                let nevra = Nevra {
                    name,
                    epoch,
                    version: attribute(&element, "ver")?,
                    release: attribute(&element, "rel")?,
                    arch,
                };
                if !self.wanted.contains(&nevra) || self.found.contains_key(&nevra) {
                    return Ok(Step::SkipPackage);
                }
                self.current = Some((nevra, Vec::new()));
            }
            Event::Start(element) if element.name() == QName("file") && self.current.is_some() => {
                let kind = match optional_attribute(&element, "type")?.as_deref() {
                    Some("dir") => FileKind::Dir,
                    Some("ghost") => FileKind::Ghost,
                    _ => FileKind::File,
                };
                self.file = Some((kind, String::new()));
            }
            Event::Text(text) => {
                if let Some((_, path)) = &mut self.file {
                    path.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some((_, path)) = &mut self.file {
                    path.push_str(&data.into_inner());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some((_, path)) = &mut self.file {
                    match reference.resolve_char_ref()? {
                        Some(char) => path.push(char),
                        None => path.push_str(
                            resolve_predefined_entity(&reference)
                                .with_context(|| format!("unknown entity &{};", &*reference))?,
                        ),
                    }
                }
            }
            Event::End(element) if element.name() == QName("file") => {
                if let (Some((kind, path)), Some((_, files))) =
                    (self.file.take(), &mut self.current)
                {
                    files.push(FileEntry { kind, path });
                }
            }
            Event::End(element) if element.name() == QName("package") => {
                self.package = None;
                self.file = None;
                if let Some((nevra, files)) = self.current.take() {
                    self.found.insert(nevra, files);
                    if self.found.len() == self.wanted.len() {
                        return Ok(Step::Done);
                    }
                }
            }
            Event::End(element) if element.name() == QName("filelists") => return Ok(Step::Done),
            Event::Eof => return Ok(Step::Truncated),
            _ => {}
        }
        Ok(Step::Next)
    }
}

/// The value of a required attribute, unescaped.
fn attribute(element: &BytesStart, name: &str) -> Result<String> {
    optional_attribute(element, name)?
        .with_context(|| format!("<{}> without the attribute {name}", element.name().as_ref()))
}

/// The value of an attribute, unescaped, if the element has it.
fn optional_attribute(element: &BytesStart, name: &str) -> Result<Option<String>> {
    let Some(attribute) = element.try_get_attribute(name)? else {
        return Ok(None);
    };
    Ok(Some(
        attribute
            .normalized_value(XmlVersion::Implicit1_0)?
            .into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const DOCUMENT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="4">
<package pkgid="aaa" name="other" arch="x86_64">
  <version epoch="0" ver="1.0" rel="1"/>
  <file>/tmp/other</file>
</package>
<package pkgid="bbb" name="tool" arch="x86_64">
  <version epoch="0" ver="2.0" rel="1"/>
  <file>/home/tool-2.0</file>
</package>
<package pkgid="ccc" name="tool" arch="x86_64">
  <version epoch="0" ver="1.0" rel="1.fc40"/>
  <file>/usr/bin/tool</file>
  <file>/usr/share/tool/R&amp;D &lt;notes&gt; caf&#233;</file>
  <file type="dir">/srv/tool</file>
  <file type="ghost">/tmp/tool.lock</file>
</package>
<package pkgid="ddd" name="lib" arch="noarch">
  <version epoch="2" ver="0.5" rel="3"/>
  <file>/usr/lib/lib.so</file>
</package>
</filelists>
"#;

    fn nevra(text: &str) -> Nevra {
        Nevra::parse(text).unwrap()
    }

    fn entry(kind: FileKind, path: &str) -> FileEntry {
        FileEntry {
            kind,
            path: path.to_string(),
        }
    }

    fn wanted(nevras: &[&str]) -> HashSet<Nevra> {
        nevras.iter().map(|n| nevra(n)).collect()
    }

    /// `bytes` in a file of its own.
    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    fn gzip(text: &str) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    fn read_file(
        file: &tempfile::NamedTempFile,
        wanted: &HashSet<Nevra>,
    ) -> Result<HashMap<Nevra, Vec<FileEntry>>> {
        read(open(file.path())?, wanted)
    }

    #[test]
    fn keeps_only_the_wanted_packages_of_a_gzipped_document() {
        let file = file_with(&gzip(DOCUMENT));
        let lists = read_file(
            &file,
            &wanted(&[
                "tool-1.0-1.fc40.x86_64",
                "lib-2:0.5-3.noarch",
                "absent-1-1.noarch",
            ]),
        )
        .unwrap();
        let expected = HashMap::from([
            (
                nevra("tool-1.0-1.fc40.x86_64"),
                vec![
                    entry(FileKind::File, "/usr/bin/tool"),
                    entry(FileKind::File, "/usr/share/tool/R&D <notes> café"),
                    entry(FileKind::Dir, "/srv/tool"),
                    entry(FileKind::Ghost, "/tmp/tool.lock"),
                ],
            ),
            (
                nevra("lib-2:0.5-3.noarch"),
                vec![entry(FileKind::File, "/usr/lib/lib.so")],
            ),
        ]);
        assert_eq!(lists, expected);
    }

    #[test]
    fn every_part_of_the_nevra_must_match() {
        let file = file_with(&gzip(DOCUMENT));
        for other in [
            "tool-1:1.0-1.fc40.x86_64",
            "tool-1.0-2.fc40.x86_64",
            "tool-1.1-1.fc40.x86_64",
            "tool-1.0-1.fc40.aarch64",
            "lib-0.5-3.noarch",
        ] {
            let lists = read_file(&file, &wanted(&[other])).unwrap();
            assert!(lists.is_empty(), "{other}: {lists:?}");
        }
    }

    #[test]
    fn every_compression_of_rpm_md_reads_alike() {
        let text = DOCUMENT.as_bytes();
        let mut bzip2 = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bzip2.write_all(text).unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(text).unwrap();
        let encoded = [
            ("plain", text.to_vec()),
            ("gz", gzip(DOCUMENT)),
            ("xz", xz.finish().unwrap()),
            ("zstd", zstd::encode_all(text, 3).unwrap()),
            ("bz2", bzip2.finish().unwrap()),
        ];
        let wanted = wanted(&["lib-2:0.5-3.noarch"]);
        for (name, bytes) in encoded {
            let lists = read_file(&file_with(&bytes), &wanted).unwrap();
            assert_eq!(
                lists.get(&nevra("lib-2:0.5-3.noarch")),
                Some(&vec![entry(FileKind::File, "/usr/lib/lib.so")]),
                "{name}"
            );
        }
    }

    #[test]
    fn reading_stops_after_the_last_wanted_package() {
        // Everything after the wanted package is broken: never read.
        let cut = DOCUMENT.find("<package pkgid=\"ddd\"").unwrap();
        let broken = format!("{}<package name=<<<", &DOCUMENT[..cut]);
        let file = file_with(&gzip(&broken));
        let lists = read_file(&file, &wanted(&["tool-1.0-1.fc40.x86_64"])).unwrap();
        assert_eq!(lists.len(), 1);

        // A package after the break is never found: the break is an error.
        let err = read_file(&file, &wanted(&["lib-2:0.5-3.noarch"])).unwrap_err();
        assert!(format!("{err:#}").contains("of the XML"), "{err:#}");
    }

    #[test]
    fn a_truncated_document_is_an_error() {
        let cut = DOCUMENT.find("</filelists>").unwrap();
        let file = file_with(&gzip(&DOCUMENT[..cut]));
        let err = read_file(&file, &wanted(&["absent-1-1.noarch"])).unwrap_err();
        assert!(
            format!("{err:#}").contains("the XML ends before </filelists>"),
            "{err:#}"
        );
        // A gzip stream cut short is an error too, not an early end.
        let gz = gzip(DOCUMENT);
        let file = file_with(&gz[..gz.len() / 2]);
        assert!(read_file(&file, &wanted(&["absent-1-1.noarch"])).is_err());
    }
}
