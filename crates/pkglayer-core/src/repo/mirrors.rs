//! Where a repo's mirrors come from when it has no `baseurl`: a metalink (mirrors plus the expected
//! hashes of `repomd.xml`) or a mirrorlist (one base URL a line).

use anyhow::{Context, Result, bail};

use super::repomd::Checksum;

/// What a metalink says about `repomd.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metalink {
    /// Base URLs of the mirrors, most preferred first.
    pub mirrors: Vec<String>,
    /// Hashes `repomd.xml` must match (every one we can check).
    pub repomd_hashes: Vec<Checksum>,
}

/// Parses a metalink document (the format Fedora's mirror manager serves).
pub fn parse_metalink(text: &str) -> Result<Metalink> {
    let doc = roxmltree::Document::parse(text).context("the metalink is not well-formed XML")?;
    let file = doc
        .descendants()
        .find(|n| n.has_tag_name("file") && n.attribute("name") == Some("repomd.xml"))
        .context("the metalink has no <file name=\"repomd.xml\">")?;

    let repomd_hashes = file
        .descendants()
        .filter(|n| n.has_tag_name("hash"))
        .filter_map(|n| Checksum::new(n.attribute("type")?, n.text()?).ok())
        .collect();

    let mut urls: Vec<(i64, usize, String)> = file
        .descendants()
        .filter(|n| n.has_tag_name("url"))
        .filter_map(|n| {
            let url = n.text()?.trim();
            let protocol = n.attribute("protocol").unwrap_or("");
            if !matches!(protocol, "http" | "https" | "file" | "") {
                return None; // rsync and friends
            }
            let preference = n
                .attribute("preference")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            Some((preference, url.to_string()))
        })
        .enumerate()
        .map(|(order, (preference, url))| (preference, order, url))
        .collect();
    // Highest preference first; document order breaks ties.
    urls.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mirrors: Vec<String> = urls
        .into_iter()
        .map(|(_, _, url)| base_of_repomd_url(&url))
        .collect();
    if mirrors.is_empty() {
        bail!("the metalink lists no http(s) mirror for repomd.xml");
    }
    Ok(Metalink {
        mirrors,
        repomd_hashes,
    })
}

/// Parses a mirrorlist: one base URL a line, `#` comments.
pub fn parse_mirrorlist(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter(|line| line.contains("://"))
        .map(str::to_string)
        .collect()
}

/// `https://m/fedora/repodata/repomd.xml` -> `https://m/fedora/`
fn base_of_repomd_url(url: &str) -> String {
    url.strip_suffix("repodata/repomd.xml")
        .unwrap_or(url)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256: &str = "0c3a3a6b1e6f4d8a2f5c7b9e1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f";

    #[test]
    fn parses_a_fedora_metalink() {
        let text = format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" xmlns:mm0="http://fedorahosted.org/mirrormanager">
 <files>
  <file name="repomd.xml">
   <mm0:timestamp>1700000000</mm0:timestamp>
   <size>6543</size>
   <verification>
    <hash type="md5">d41d8cd98f00b204e9800998ecf8427e</hash>
    <hash type="sha256">{SHA256}</hash>
   </verification>
   <resources maxconnections="1">
    <url protocol="rsync" type="rsync" location="DE" preference="100">rsync://m1/fedora/repodata/repomd.xml</url>
    <url protocol="https" type="https" location="DE" preference="99">https://m2/fedora/repodata/repomd.xml</url>
    <url protocol="http" type="http" location="US" preference="100">http://m3/fedora/repodata/repomd.xml</url>
    <url protocol="https" type="https" location="US" preference="99">https://m4/f/repodata/repomd.xml</url>
   </resources>
  </file>
 </files>
</metalink>"#
        );
        let metalink = parse_metalink(&text).unwrap();
        assert_eq!(
            metalink.mirrors,
            ["http://m3/fedora/", "https://m2/fedora/", "https://m4/f/"]
        );
        assert_eq!(metalink.repomd_hashes.len(), 1, "md5 is not trusted");
        assert_eq!(metalink.repomd_hashes[0].hex, SHA256);
    }

    #[test]
    fn rejects_useless_metalinks() {
        let cases = [
            ("<metalink", "not well-formed"),
            (
                "<metalink><files/></metalink>",
                "no <file name=\"repomd.xml\">",
            ),
            (
                "<metalink><files><file name=\"repomd.xml\"><resources><url protocol=\"rsync\">rsync://x/repodata/repomd.xml</url></resources></file></files></metalink>",
                "no http(s) mirror",
            ),
        ];
        for (text, expected) in cases {
            let err = format!("{:#}", parse_metalink(text).unwrap_err());
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn parses_a_mirrorlist() {
        let text = "# generated\nhttp://a/fedora/\n\n  https://b/fedora/  \nnot a url\n";
        assert_eq!(
            parse_mirrorlist(text),
            ["http://a/fedora/", "https://b/fedora/"]
        );
    }
}
