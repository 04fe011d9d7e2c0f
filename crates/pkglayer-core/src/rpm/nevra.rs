//! Package identity: name, epoch, version, release, architecture.

use std::fmt;

/// A package's full identity. Displays as dnf does: `name-[epoch:]version-release.arch`, with the
/// epoch only when it is not zero.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Nevra {
    /// Package name.
    pub name: String,
    /// 0 when the package has none.
    pub epoch: u32,
    /// Upstream version.
    pub version: String,
    /// The distribution's build of `version`.
    pub release: String,
    /// Machine architecture (`x86_64`, `aarch64`, …) or `noarch`.
    pub arch: String,
}

impl Nevra {
    /// From a name, an `[epoch:]version-release` and an arch, as libsolv and rpm give them.
    pub fn from_parts(name: &str, evr: &str, arch: &str) -> Self {
        let (epoch, vr) = match evr.split_once(':') {
            Some((epoch, vr)) => (epoch.parse().unwrap_or(0), vr),
            None => (0, evr),
        };
        let (version, release) = vr.rsplit_once('-').unwrap_or((vr, ""));
        Nevra {
            name: name.to_string(),
            epoch,
            version: version.to_string(),
            release: release.to_string(),
            arch: arch.to_string(),
        }
    }

    /// The identity an RPM header gives.
    pub fn of_header(header: &::rpm::PackageMetadata) -> Result<Self, ::rpm::Error> {
        Ok(Nevra {
            name: header.get_name()?.to_string(),
            epoch: header.get_epoch().unwrap_or(0),
            version: header.get_version()?.to_string(),
            release: header.get_release()?.to_string(),
            arch: header.get_arch()?.to_string(),
        })
    }

    /// Parses `name-[epoch:]version-release.arch`, the form [`Nevra`] displays as.
    pub fn parse(text: &str) -> Option<Self> {
        let (rest, arch) = text.rsplit_once('.')?;
        let (rest, release) = rest.rsplit_once('-')?;
        let (name, ev) = rest.rsplit_once('-')?;
        if name.is_empty() || ev.is_empty() || release.is_empty() || arch.is_empty() {
            return None;
        }
        Some(Self::from_parts(name, &format!("{ev}-{release}"), arch))
    }

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
    fn parses_what_it_displays() {
        for text in [
            "strace-6.1-1.fc40.x86_64",
            "strace-2:9.1-3.noarch",
            "python3-dnf-4.18.0-2.fc40.noarch",
        ] {
            assert_eq!(Nevra::parse(text).unwrap().to_string(), text);
        }
        let nevra = Nevra::parse("python3-dnf-4.18.0-2.fc40.noarch").unwrap();
        assert_eq!(
            (nevra.name.as_str(), nevra.version.as_str()),
            ("python3-dnf", "4.18.0")
        );
        for bad in ["strace", "strace-6.1.x86_64", "-1-1.x86_64"] {
            assert_eq!(Nevra::parse(bad), None, "{bad}");
        }
    }

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
