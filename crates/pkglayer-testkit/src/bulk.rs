//! Inputs of realistic size for benchmarks: incompressible content, and a distribution-shaped set of
//! base packages (thousands of packages, ~100 files each, dependencies between them).

use crate::package::TestPackage;

/// A small deterministic generator (xorshift64*): the same seed gives the same bytes on every run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Spread small seeds (0, 1, 2…) over the state; never zero.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `len` pseudo-random bytes from `seed`: no compressor (gzip, zstd, xz) makes them smaller, so a
/// package of them is as big on the wire and in memory as its content.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

const LANGS: [&str; 12] = [
    "cs", "de", "es", "fr", "it", "ja", "ko", "pl", "pt_BR", "ru", "uk", "zh_CN",
];
const WORDS: [&str; 16] = [
    "library",
    "system",
    "daemon",
    "support",
    "files",
    "utilities",
    "for",
    "the",
    "development",
    "runtime",
    "shared",
    "data",
    "configuration",
    "tools",
    "network",
    "font",
];

/// `count` packages shaped like a distribution's base (Fedora's has ~2 000 packages and ~200 000
/// files): `distro-NNNN` with on average `files_per_package` entries (half to one and a half
/// times that) in their own directories under `/usr/share`, `/usr/lib64`, docs and licenses, some
/// executables, configuration under `/etc`, translations in shared locale directories; each
/// provides a soname `libdistroN.so.1()(64bit)` and requires one to four sonames of earlier
/// packages, one earlier package by versioned name and, one in four, `/bin/sh` (which
/// [`crate::base_packages`]' busybox provides). A description and a few changelog entries give the
/// headers, and so the rpmdb, a realistic size. Deterministic: the same arguments give the same
/// packages.
pub fn distro_packages(count: usize, files_per_package: usize) -> Vec<TestPackage> {
    (0..count)
        .map(|i| distro_package(i, files_per_package))
        .collect()
}

fn distro_package(i: usize, files: usize) -> TestPackage {
    let mut rng = Rng::new(0x5EED_0000 + i as u64);
    let name = format!("distro-{i:04}");
    let version = format!("{}.{}.{}", 1 + i % 5, i % 17, i % 7);
    let release = format!("{}.fc40", 1 + i % 3);
    let sentence = |rng: &mut Rng, words: usize| {
        (0..words)
            .map(|_| WORDS[rng.below(WORDS.len())])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let description = (0..6 + rng.below(10))
        .map(|_| sentence(&mut rng, 12) + ".")
        .collect::<Vec<_>>()
        .join("\n");
    let mut package = TestPackage::new(&name, &format!("{version}-{release}"))
        .provides(&format!("libdistro{i}.so.1()(64bit)"))
        .description(&format!(
            "{name} provides {}.\n{description}\n",
            sentence(&mut rng, 5)
        ));
    for entry in 0..10 + rng.below(41) {
        let time = 1_700_000_000 - (entry as u32) * 2_592_000;
        package = package.changelog(
            &format!(
                "Packager {} <packager{}@example.org> - {version}-{entry}",
                entry % 7,
                entry % 7
            ),
            &(0..2 + rng.below(3))
                .map(|_| format!("- {}", sentence(&mut rng, 10)))
                .collect::<Vec<_>>()
                .join("\n"),
            time,
        );
    }
    if i > 0 {
        for _ in 0..1 + rng.below(4) {
            let j = rng.below(i);
            package = package.requires(&format!("libdistro{j}.so.1()(64bit)"));
        }
        package = package.requires(&format!("distro-{:04} >= 1.0", rng.below(i)));
    }
    if i.is_multiple_of(4) {
        package = package.requires("/bin/sh");
    }

    // Fixed entries: the library and its soname link, docs, a license, maybe a program, a config.
    let lib = format!("/usr/lib64/libdistro{i}.so.1.0.0");
    let text = |rng: &mut Rng, what: &str| {
        let lines = 1 + rng.below(24);
        let mut body = format!("{what} of {name}\n");
        for _ in 0..lines {
            body.push_str(&sentence(rng, 8));
            body.push('\n');
        }
        body
    };
    package = package
        .executable(&lib, text(&mut rng, "library"))
        .symlink(
            &format!("/usr/lib64/libdistro{i}.so.1"),
            &format!("libdistro{i}.so.1.0.0"),
        )
        .dir(&format!("/usr/share/doc/{name}"))
        .file(
            &format!("/usr/share/doc/{name}/README"),
            text(&mut rng, "readme"),
        )
        .dir(&format!("/usr/share/licenses/{name}"))
        .file(
            &format!("/usr/share/licenses/{name}/LICENSE"),
            text(&mut rng, "license"),
        );
    let mut made = 6;
    if i.is_multiple_of(3) {
        package = package.executable(
            &format!("/usr/bin/{name}"),
            format!("#!/bin/sh\necho {name}\n"),
        );
        made += 1;
    }
    if i.is_multiple_of(4) {
        package = package.file(
            &format!("/etc/{name}.conf"),
            text(&mut rng, "configuration"),
        );
        made += 1;
    }
    if i.is_multiple_of(5) {
        for lang in LANGS {
            package = package.file(
                &format!("/usr/share/locale/{lang}/LC_MESSAGES/{name}.mo"),
                text(&mut rng, lang),
            );
        }
        made += LANGS.len();
    }
    // The rest: data files in directories of 20.
    let wanted = files / 2 + rng.below(files + 1);
    let data = format!("/usr/share/{name}");
    if wanted > made {
        package = package.dir(&data);
        for k in 0..wanted - made - 1 {
            let sub = format!("{data}/d{:02}", k / 20);
            if k.is_multiple_of(20) {
                package = package.dir(&sub);
            }
            package = package.file(&format!("{sub}/f{k:03}.dat"), text(&mut rng, "data"));
        }
    }
    package
}

/// Writes `count` small files that no package owns under `root/usr/share/bulk` (directories of
/// 100): a base tree of realistic size for what is not in its rpm database.
pub fn write_unowned_files(root: &std::path::Path, count: usize) -> std::io::Result<()> {
    for i in 0..count {
        let dir = root.join(format!("usr/share/bulk/d{:04}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir)?;
        }
        std::fs::write(dir.join(format!("f{i:06}")), format!("bulk file {i}\n"))?;
    }
    Ok(())
}
