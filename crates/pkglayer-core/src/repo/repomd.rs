//! `repodata/repomd.xml`: the index of an rpm-md repo, naming each metadata file with its checksum.
//!
//! ```xml
//! <repomd xmlns="http://linux.duke.edu/metadata/repo">
//!   <revision>1700000000</revision>
//!   <data type="primary">
//!     <checksum type="sha256">…</checksum>
//!     <location href="repodata/…-primary.xml.zst"/>
//!     <size>1234</size>
//!   </data>
//! </repomd>
//! ```

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use sha2::Digest;

/// The parsed index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repomd {
    /// `<revision>`: the repo's own name for this state of it (often a timestamp).
    pub revision: Option<String>,
    pub(crate) records: Vec<RepomdRecord>,
}

/// One `<data type="…">` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepomdRecord {
    /// `primary`, `filelists`, `other`, `updateinfo`, …
    pub kind: String,
    /// Path relative to the repo's base URL.
    pub location: String,
    /// The digest the file must have.
    pub checksum: Checksum,
    pub(crate) size: Option<u64>,
}

/// A digest as rpm-md writes it: algorithm and lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub(crate) algorithm: ChecksumAlgorithm,
    pub(crate) hex: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChecksumAlgorithm {
    Sha256,
    Sha512,
}

impl Repomd {
    /// Parses repomd.xml text.
    pub fn parse(text: &str) -> Result<Self> {
        let doc = roxmltree::Document::parse(text).context("repomd.xml is not well-formed XML")?;
        let root = doc.root_element();
        if root.tag_name().name() != "repomd" {
            bail!(
                "repomd.xml has <{}> at its root, not <repomd>",
                root.tag_name().name()
            );
        }
        let revision = child_text(root, "revision");
        let mut records = Vec::new();
        for data in root.children().filter(|n| n.has_tag_name("data")) {
            let kind = data
                .attribute("type")
                .context("a <data> element of repomd.xml has no type")?
                .to_string();
            let location = data
                .children()
                .find(|n| n.has_tag_name("location"))
                .and_then(|n| n.attribute("href"))
                .with_context(|| format!("repomd.xml: {kind} has no <location href=…>"))?
                .to_string();
            let checksum_node = data
                .children()
                .find(|n| n.has_tag_name("checksum"))
                .with_context(|| format!("repomd.xml: {kind} has no <checksum>"))?;
            let checksum = Checksum::new(
                checksum_node.attribute("type").unwrap_or_default(),
                checksum_node.text().unwrap_or_default(),
            )
            .with_context(|| format!("repomd.xml: checksum of {kind}"))?;
            let size = child_text(data, "size").and_then(|s| s.parse().ok());
            records.push(RepomdRecord {
                kind,
                location,
                checksum,
                size,
            });
        }
        Ok(Repomd { revision, records })
    }

    /// The record of metadata `kind` (`primary`, `filelists`, …), if the repo has one.
    pub fn record(&self, kind: &str) -> Option<&RepomdRecord> {
        self.records.iter().find(|r| r.kind == kind)
    }
}

impl Checksum {
    pub(crate) fn new(algorithm: &str, hex: &str) -> Result<Self> {
        let algorithm = match algorithm {
            "sha256" => ChecksumAlgorithm::Sha256,
            "sha512" => ChecksumAlgorithm::Sha512,
            other => bail!("unsupported checksum type {other:?} (sha256 and sha512 are)"),
        };
        let hex = hex.trim().to_ascii_lowercase();
        let expected_len = match algorithm {
            ChecksumAlgorithm::Sha256 => 64,
            ChecksumAlgorithm::Sha512 => 128,
        };
        if hex.len() != expected_len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("{hex:?} is not a {algorithm:?} digest");
        }
        Ok(Checksum { algorithm, hex })
    }

    /// Checks that the file at `path` has this checksum; the error names the file and both digests.
    pub fn verify_file(&self, path: &Path) -> Result<()> {
        let file =
            std::fs::File::open(path).with_context(|| format!("Opening {}", path.display()))?;
        let actual = self
            .algorithm
            .digest(std::io::BufReader::new(file))
            .with_context(|| format!("Reading {}", path.display()))?;
        if actual != self.hex {
            bail!(
                "checksum mismatch for {}: expected {:?} {}, got {}",
                path.display(),
                self.algorithm,
                self.hex,
                actual
            );
        }
        Ok(())
    }
}

impl ChecksumAlgorithm {
    /// The lowercase hex digest of everything `reader` yields.
    pub fn digest(self, mut reader: impl Read) -> std::io::Result<String> {
        fn run<D: Digest>(mut digest: D, reader: &mut impl Read) -> std::io::Result<String> {
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let n = reader.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                digest.update(&buffer[..n]);
            }
            Ok(hex::encode(digest.finalize()))
        }
        match self {
            ChecksumAlgorithm::Sha256 => run(sha2::Sha256::new(), &mut reader),
            ChecksumAlgorithm::Sha512 => run(sha2::Sha512::new(), &mut reader),
        }
    }
}

fn child_text(node: roxmltree::Node, name: &str) -> Option<String> {
    node.children()
        .find(|n| n.has_tag_name(name))
        .and_then(|n| n.text())
        .map(|t| t.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA_A: &str = "a3f1d9e3c0b5f6e7d8c9b0a1f2e3d4c5b6a7980716253443526170819a0b1c2d";

    #[test]
    fn parses_the_index() {
        let text = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1700000000</revision>
  <data type="primary">
    <checksum type="sha256">{SHA_A}</checksum>
    <open-checksum type="sha256">{SHA_A}</open-checksum>
    <location href="repodata/{SHA_A}-primary.xml.zst"/>
    <timestamp>1700000000</timestamp>
    <size>1234</size>
  </data>
  <data type="filelists">
    <checksum type="sha256">{}</checksum>
    <location href="repodata/filelists.xml.gz"/>
  </data>
</repomd>"#,
            SHA_A.to_uppercase()
        );
        let repomd = Repomd::parse(&text).unwrap();
        assert_eq!(repomd.revision.as_deref(), Some("1700000000"));
        let primary = repomd.record("primary").unwrap();
        assert_eq!(
            primary.location,
            format!("repodata/{SHA_A}-primary.xml.zst")
        );
        assert_eq!(primary.size, Some(1234));
        assert_eq!(primary.checksum.hex, SHA_A);
        let filelists = repomd.record("filelists").unwrap();
        assert_eq!(
            filelists.checksum.hex, SHA_A,
            "hex is normalised to lowercase"
        );
        assert_eq!(filelists.size, None);
        assert!(repomd.record("updateinfo").is_none());
    }

    #[test]
    fn rejects_broken_indexes() {
        let cases = [
            ("<repomd><data type=\"primary\">", "not well-formed XML"),
            ("<metalink/>", "has <metalink> at its root"),
            (
                "<repomd><data><location href=\"x\"/></data></repomd>",
                "has no type",
            ),
            (
                "<repomd><data type=\"primary\"><checksum type=\"sha256\">00</checksum></data></repomd>",
                "primary has no <location",
            ),
            (
                "<repomd><data type=\"primary\"><location href=\"x\"/></data></repomd>",
                "primary has no <checksum>",
            ),
            (
                "<repomd><data type=\"primary\"><location href=\"x\"/><checksum type=\"md5\">00</checksum></data></repomd>",
                "unsupported checksum type \"md5\"",
            ),
            (
                "<repomd><data type=\"primary\"><location href=\"x\"/><checksum type=\"sha256\">abc</checksum></data></repomd>",
                "is not a Sha256 digest",
            ),
        ];
        for (text, expected) in cases {
            let err = format!("{:#}", Repomd::parse(text).unwrap_err());
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn verifies_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("primary.xml");
        std::fs::write(&path, b"hello").unwrap();
        // sha256("hello")
        let good = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        Checksum::new("sha256", good)
            .unwrap()
            .verify_file(&path)
            .unwrap();
        let err = Checksum::new("sha256", SHA_A)
            .unwrap()
            .verify_file(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("checksum mismatch for"), "{err}");
        assert!(
            err.contains(&format!("expected Sha256 {SHA_A}, got {good}")),
            "{err}"
        );
    }
}
