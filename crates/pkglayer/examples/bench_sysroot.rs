//! Makes a sysroot for benchmarks: the test kit's base OS plus `base-lib-0..N` packages (which the
//! synthetic repos of `bench/` depend on), deployed from a vendor repo. Everything stays in `DIR`.
//!
//! Usage: `bench_sysroot DIR N`

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use pkglayer_testkit::{TestPackage, TestSysroot, Vendor, base_packages_on_platform, base_ref};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, count] = args.as_slice() else {
        bail!("usage: bench_sysroot DIR N");
    };
    let dir = PathBuf::from(dir);
    let count: usize = count.parse().context("N is a number")?;
    std::fs::create_dir_all(&dir)?;
    let dir = std::fs::canonicalize(dir)?;

    // On a module platform, for the modular solve benchmark; nothing else reads it.
    let mut packages = base_packages_on_platform("1", Some("platform:el9"));
    packages.extend((0..count).map(|i| {
        TestPackage::new(&format!("base-lib-{i}"), "1.0-1").file(
            &format!("/usr/lib64/base-lib-{i}.so"),
            format!("base library {i}\n"),
        )
    }));
    let vendor = Vendor::create(&dir.join("vendor"))?;
    vendor.publish(&base_ref(), "1", &packages)?;
    let sysroot = TestSysroot::create(&dir.join("sysroot"), &vendor, &base_ref())?;
    println!("{}", sysroot.path.display());
    Ok(())
}
