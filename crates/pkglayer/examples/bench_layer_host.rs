//! Makes the host for `bench/layer` and `bench/scripts`: a base OS with `N` extra files (in
//! directories of 100), a sysroot deployed from it, and a repo with `app`, which needs `liba` and
//! `libb`, and `app-scripted`, the same with `%post` and `%posttrans` scripts. All in `DIR`.
//!
//! Usage: `bench_layer_host DIR N`; prints the sysroot path.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use pkglayer_testkit::{
    Script, TestPackage, TestSysroot, Vendor, base_packages, base_ref, create_repo,
};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, count] = args.as_slice() else {
        bail!("usage: bench_layer_host DIR N");
    };
    let count: usize = count.parse().context("N is a number")?;
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir)?;
    let dir = std::fs::canonicalize(dir)?;

    let vendor = Vendor::create(&dir.join("vendor"))?;
    vendor.publish_with(&base_ref(), "1", &base_packages("1"), |root| {
        for i in 0..count {
            let sub = root.join(format!("usr/share/bulk/d{:04}", i / 100));
            if i % 100 == 0 {
                std::fs::create_dir_all(&sub)?;
            }
            std::fs::write(sub.join(format!("f{i:06}")), format!("bulk file {i}\n"))?;
        }
        Ok(())
    })?;
    let sysroot = TestSysroot::create(&dir.join("sysroot"), &vendor, &base_ref())?;

    let lib = |name: &str| {
        TestPackage::new(name, "1.0-1")
            .file(&format!("/usr/lib64/{name}.so.1"), format!("{name}\n"))
    };
    let packages = [
        TestPackage::new("app", "1.0-1")
            .requires("liba")
            .requires("libb")
            .executable("/usr/bin/app", "#!/bin/sh\necho app\n"),
        TestPackage::new("app-scripted", "1.0-1")
            .requires("liba")
            .requires("libb")
            .executable("/usr/bin/app-scripted", "#!/bin/sh\necho app\n")
            .script(
                Script::Post,
                "echo \"configured $1\" > /etc/app-scripted.conf",
            )
            .script(
                Script::PostTrans,
                "mkdir -p /usr/share/app-scripted && echo done > /usr/share/app-scripted/stamp",
            ),
        lib("liba"),
        lib("libb"),
    ];
    create_repo(&dir.join("repo"), &packages, "zstd")?;
    let repos = dir.join("repos.d");
    std::fs::create_dir_all(&repos)?;
    std::fs::write(
        repos.join("bench.repo"),
        format!(
            "[bench]\nbaseurl=file://{}/repo/\ngpgcheck=0\n",
            dir.display()
        ),
    )?;
    println!("{}", sysroot.path.display());
    Ok(())
}
