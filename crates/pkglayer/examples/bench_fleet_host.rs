//! Makes the inputs of `bench/fleet`: a vendor archive repo with a base of `N` extra files (in
//! directories of 100), one host sysroot deployed from it (the template the benchmark copies for
//! each host), and a repo of `app` and the 19 libraries it needs (`lib01`…`lib19`, 8 files of
//! 2 KiB each), all in `DIR`.
//!
//! Usage: `bench_fleet_host DIR N`; prints the template sysroot's path.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use pkglayer_testkit::{
    TestPackage, TestSysroot, Vendor, base_packages, base_ref, create_repo, write_unowned_files,
};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, count] = args.as_slice() else {
        bail!("usage: bench_fleet_host DIR N");
    };
    let count: usize = count.parse().context("N is a number")?;
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir)?;
    let dir = std::fs::canonicalize(dir)?;

    let vendor = Vendor::create(&dir.join("vendor"))?;
    vendor.publish_with(&base_ref(), "1", &base_packages("1"), |root| {
        Ok(write_unowned_files(root, count)?)
    })?;
    let sysroot = TestSysroot::create(&dir.join("template"), &vendor, &base_ref())?;

    let mut app = TestPackage::new("app", "1.0-1").executable("/usr/bin/app", "#!/bin/sh\n");
    let mut packages = Vec::new();
    for i in 1..20 {
        let name = format!("lib{i:02}");
        app = app.requires(&name);
        let mut lib = TestPackage::new(&name, "1.0-1");
        for f in 0..8 {
            let text: String = format!("{name} file {f} ").repeat(2048 / 16);
            lib = lib.file(&format!("/usr/lib64/{name}/f{f}"), text);
        }
        packages.push(lib);
    }
    packages.push(app);
    create_repo(&dir.join("www/repo"), &packages, "zstd")?;
    println!("{}", sysroot.path.display());
    Ok(())
}
