//! Package identity: name, epoch, version, release, architecture.

use std::fmt;

/// A package's full identity. Displays as dnf does: `name-[epoch:]version-release.arch`, with the
/// epoch only when it is not zero.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Nevra {
    pub name: String,
    pub epoch: u32,
    pub version: String,
    pub release: String,
    pub arch: String,
}

impl Nevra {
    /// `[epoch:]version-release`
    pub fn evr(&self) -> String {
        if self.epoch == 0 {
            format!("{}-{}", self.version, self.release)
        } else {
            format!("{}:{}-{}", self.epoch, self.version, self.release)
        }
    }
}

impl fmt::Display for Nevra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}.{}", self.name, self.evr(), self.arch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_dnf() {
        let cases = [
            (0, "1.0", "1.fc40", "x86_64", "strace-1.0-1.fc40.x86_64"),
            (2, "9.1", "3", "noarch", "strace-2:9.1-3.noarch"),
        ];
        for (epoch, version, release, arch, expected) in cases {
            let nevra = Nevra {
                name: "strace".into(),
                epoch,
                version: version.into(),
                release: release.into(),
                arch: arch.into(),
            };
            assert_eq!(nevra.to_string(), expected);
        }
    }
}
