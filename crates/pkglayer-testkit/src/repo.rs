//! rpm-md repositories of test packages, written by the real createrepo_c.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::Digest;

use crate::command::run;
use crate::package::TestPackage;

/// Writes `packages` into `dir` (under `Packages/`) and runs createrepo_c with the metadata
/// compressed as `compression` (`gz`, `xz`, `bz2` or `zstd`).
pub fn create_repo(dir: &Path, packages: &[TestPackage], compression: &str) -> Result<()> {
    let packages_dir = dir.join("Packages");
    std::fs::create_dir_all(&packages_dir)?;
    for package in packages {
        package.write_to(&packages_dir)?;
    }
    // Debian 12's createrepo_c predates zstd: write gzip, then recompress as a zstd-era
    // createrepo_c would and update repomd.xml to match.
    let native = if compression == "zstd" {
        "gz"
    } else {
        compression
    };
    let _ = std::fs::remove_dir_all(dir.join("repodata"));
    run(Command::new("createrepo_c")
        .args(["--quiet", "--no-database"])
        .arg(format!("--general-compress-type={native}"))
        .arg(dir))?;
    if compression == "zstd" {
        recompress_as_zstd(dir)?;
    }
    Ok(())
}

/// Rewrites every `.xml.gz` metadata file of `dir/repodata` as `.xml.zst`, fixing repomd.xml's
/// location, checksum and size for each.
fn recompress_as_zstd(dir: &Path) -> Result<()> {
    let repodata = dir.join("repodata");
    let repomd_path = repodata.join("repomd.xml");
    let mut repomd = std::fs::read_to_string(&repomd_path)?;
    let blocks: Vec<String> = repomd
        .split("<data ")
        .skip(1)
        .map(|b| b.split("</data>").next().unwrap_or_default().to_string())
        .collect();
    for block in blocks {
        let Some(location) = between(&block, "<location href=\"", "\"") else {
            bail!("repomd.xml block without location: {block}");
        };
        if !location.ends_with(".xml.gz") {
            continue;
        }
        let old_checksum =
            between(&block, "<checksum type=\"sha256\">", "<").context("checksum")?;
        let old_size = between(&block, "<size>", "<").context("size")?;

        let mut xml = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(dir.join(location))?)
            .read_to_end(&mut xml)?;
        let compressed = zstd::encode_all(&xml[..], 3)?;
        let checksum = hex::encode(sha2::Sha256::digest(&compressed));
        let kind = location
            .rsplit('/')
            .next()
            .and_then(|name| name.split('-').next_back())
            .context("metadata file name")?
            .trim_end_matches(".xml.gz");
        let new_location = format!("repodata/{checksum}-{kind}.xml.zst");
        std::fs::write(dir.join(&new_location), &compressed)?;
        std::fs::remove_file(dir.join(location))?;

        let new_block = block
            .replace(location, &new_location)
            .replace(
                &format!("<checksum type=\"sha256\">{old_checksum}<"),
                &format!("<checksum type=\"sha256\">{checksum}<"),
            )
            .replace(
                &format!("<size>{old_size}<"),
                &format!("<size>{}<", compressed.len()),
            );
        repomd = repomd.replace(&block, &new_block);
    }
    std::fs::write(&repomd_path, repomd)?;
    Ok(())
}

/// Rewrites the `kind` metadata (e.g. `primary`, gzip-compressed) of the repo in `dir` with `edit`,
/// and fixes repomd.xml's checksums and sizes so only the content is wrong: for tests of metadata
/// that is well delivered but malformed or lying.
pub fn edit_metadata(dir: &Path, kind: &str, edit: impl FnOnce(String) -> String) -> Result<()> {
    let repomd_path = dir.join("repodata/repomd.xml");
    let mut repomd = std::fs::read_to_string(&repomd_path)?;
    let block = repomd
        .split("<data ")
        .find(|b| b.starts_with(&format!("type=\"{kind}\"")))
        .and_then(|b| b.split("</data>").next())
        .with_context(|| format!("repomd.xml has no {kind}"))?
        .to_string();
    let location = between(&block, "<location href=\"", "\"").context("location")?;
    let mut xml = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(dir.join(location))?)
        .read_to_string(&mut xml)?;
    let xml = edit(xml);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, xml.as_bytes())?;
    let compressed = encoder.finish()?;
    std::fs::write(dir.join(location), &compressed)?;

    let mut new_block = block.clone();
    for (tag, digest, size) in [
        (
            "checksum",
            hex::encode(sha2::Sha256::digest(&compressed)),
            compressed.len(),
        ),
        (
            "open-checksum",
            hex::encode(sha2::Sha256::digest(xml.as_bytes())),
            xml.len(),
        ),
    ] {
        if let Some(old) = between(&block, &format!("<{tag} type=\"sha256\">"), "<") {
            new_block = new_block.replace(
                &format!("<{tag} type=\"sha256\">{old}<"),
                &format!("<{tag} type=\"sha256\">{digest}<"),
            );
        }
        let size_tag = tag.replace("checksum", "size");
        if let Some(old) = between(&block, &format!("<{size_tag}>"), "<") {
            new_block = new_block.replace(
                &format!("<{size_tag}>{old}<"),
                &format!("<{size_tag}>{size}<"),
            );
        }
    }
    repomd = repomd.replace(&block, &new_block);
    std::fs::write(&repomd_path, repomd)?;
    Ok(())
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}
