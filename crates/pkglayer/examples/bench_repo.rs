//! Makes a repo of `COUNT` packages of incompressible content for `bench/pipeline`: `blob-01` …
//! `blob-COUNT`, each with four files of `SIZE / 4` pseudo-random bytes (so a package is about
//! `SIZE` bytes on the wire and in the tree), zstd payloads as Fedora's, no dependencies. Metadata
//! by createrepo_c, in `DIR`.
//!
//! Usage: `bench_repo DIR COUNT SIZE`; prints the package names, one per line.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use pkglayer_testkit::{TestPackage, create_repo, random_bytes};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, count, size] = args.as_slice() else {
        bail!("usage: bench_repo DIR COUNT SIZE");
    };
    let dir = PathBuf::from(dir);
    let count: usize = count.parse().context("COUNT is a number")?;
    let size: usize = size.parse().context("SIZE is a number of bytes")?;
    let width = count.to_string().len().max(2);
    let packages: Vec<TestPackage> = (1..=count)
        .map(|i| {
            let name = format!("blob-{i:0width$}");
            let mut package = TestPackage::new(&name, "1.0-1").zstd_payload();
            for part in 0..4 {
                package = package.file(
                    &format!("/usr/share/{name}/part{part}.bin"),
                    random_bytes((i * 4 + part) as u64, size / 4),
                );
            }
            package
        })
        .collect();
    create_repo(&dir, &packages, "zstd")?;
    for package in &packages {
        println!("{}", package.name);
    }
    Ok(())
}
