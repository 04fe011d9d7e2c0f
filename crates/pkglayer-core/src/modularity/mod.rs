//! Modularity as dnf (libdnf 0.x, RHEL 8 and 9) does it: packages that belong to a module stream are
//! visible only while that stream is *active*.
//!
//! A stream is wanted when the host enables it (`/etc/dnf/modules.d`, [`host`]) or the origin does
//! (`[modules] enable=`, `install=`), else when it is its module's default (`modulemd-defaults`,
//! unless the module is disabled). Which builds of the wanted streams are active is a small solve of
//! its own (`solver`'s module solve): a build whose module dependencies or platform cannot be met is
//! not, and a module a wanted stream needs becomes active with it. Then, as dnf's "modular filtering":
//!
//! - the packages of builds that are not active are hidden;
//! - repo packages named like, or providing the name of, a package of an active build are hidden
//!   unless they belong to an active build themselves (the stream replaces the non-modular package);
//! - packages of the base (and local RPMs) are never hidden, nor those of repos with
//!   `module_hotfixes=1`.

pub mod host;
pub mod modulemd;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use anyhow::Result;

use crate::error::UserError;
use crate::rpm::Nevra;
use crate::solver::{ModuleJob, ModuleSolvable, solve_modules};
pub use host::{HostModules, ModuleState};
pub use modulemd::{ModuleDefaults, ModuleMetadata, ModuleStream};

/// What the module metadata of the repos and the host's configuration make of modules.
#[derive(Debug, Clone, Default)]
pub struct Modularity {
    streams: Vec<ModuleStream>,
    /// Default stream by module name.
    default_streams: BTreeMap<String, String>,
    /// Default profiles by `name:stream`.
    default_profiles: BTreeMap<String, Vec<String>>,
    /// The host's states, then the origin's enabled streams over them.
    states: BTreeMap<String, ModuleState>,
    /// The platform module (`PLATFORM_ID` of os-release), as name and stream.
    platform: Option<(String, String)>,
}

/// The streams an origin asks for: `[modules] enable=` and `install=`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleRequests {
    /// `name:stream` to enable.
    pub enable: BTreeSet<String>,
    /// `name:stream/profile` (stream and profile may be left out) to install.
    pub install: BTreeSet<String>,
}

impl ModuleRequests {
    /// Whether it asks for nothing.
    pub fn is_empty(&self) -> bool {
        self.enable.is_empty() && self.install.is_empty()
    }
}

/// Which packages module filtering keeps and hides (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleFilter {
    /// Packages of active builds: never hidden.
    pub include: HashSet<Nevra>,
    /// Packages of builds that are not active.
    pub exclude: HashSet<Nevra>,
    /// Names of the binary packages of active builds: other packages of these names, or providing
    /// them, are hidden.
    pub names: HashSet<String>,
    /// Names of the source packages of active builds: other source packages of these names are
    /// hidden.
    pub source_names: HashSet<String>,
}

/// What activating modules gave.
#[derive(Debug, Clone, Default)]
pub struct Activation {
    /// The active streams, `name:stream`, sorted.
    pub active: BTreeSet<String>,
    /// What filtering hides and keeps.
    pub filter: ModuleFilter,
    /// Module dependency problems dnf would warn of (the active set is then a best effort).
    pub problems: Vec<String>,
    /// Per package name, the streams (`name:stream`) that have it and are not active: what to
    /// enable to see it.
    pub inactive_streams: BTreeMap<String, BTreeSet<String>>,
}

impl Modularity {
    /// Modules from the repos' `metadata`, with the host's states and defaults and the base's
    /// platform.
    pub fn new(
        metadata: ModuleMetadata,
        host: HostModules,
        platform: Option<(String, String)>,
    ) -> Self {
        // Repos' defaults first; two repos that disagree leave the module without a default, as
        // libmodulemd's merge does. The host's defaults then take precedence.
        let mut default_streams: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut default_profiles: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for defaults in &metadata.defaults {
            let entry = default_streams
                .entry(defaults.module.clone())
                .or_insert_with(|| defaults.stream.clone());
            if *entry != defaults.stream {
                *entry = None;
            }
            for (stream, profiles) in &defaults.profiles {
                default_profiles.insert(format!("{}:{stream}", defaults.module), profiles.clone());
            }
        }
        for defaults in &host.defaults {
            default_streams.insert(defaults.module.clone(), defaults.stream.clone());
            for (stream, profiles) in &defaults.profiles {
                default_profiles.insert(format!("{}:{stream}", defaults.module), profiles.clone());
            }
        }
        Modularity {
            streams: metadata.streams,
            default_streams: default_streams
                .into_iter()
                .filter_map(|(module, stream)| Some((module, stream?)))
                .collect(),
            default_profiles,
            states: host.states,
            platform,
        }
    }

    /// Whether the repos carry no module at all (then nothing is filtered).
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Applies the origin's module requests: their streams are enabled. Returns the package names
    /// the `install=` entries' profiles ask for. An unknown module, stream or profile is an error
    /// naming what there is.
    pub fn apply_requests(&mut self, requests: &ModuleRequests) -> Result<BTreeSet<String>> {
        // Module name → (stream, the spec that asked for it).
        let mut enabled: BTreeMap<String, (String, String)> = BTreeMap::new();
        fn enable(
            enabled: &mut BTreeMap<String, (String, String)>,
            name: &str,
            stream: &str,
            spec: &str,
        ) -> Result<()> {
            match enabled.insert(name.to_string(), (stream.to_string(), spec.to_string())) {
                Some((other, other_spec)) if other != stream => Err(UserError::new(format!(
                    "{other_spec} and {spec} ask for two streams of module {name}"
                ))
                .hint("a module has one stream enabled at a time: keep one of them")
                .into()),
                _ => Ok(()),
            }
        }
        for spec in &requests.enable {
            let (name, stream) = spec.split_once(':').ok_or_else(|| {
                UserError::new(format!("{spec:?} names no stream")).hint(format!(
                    "enable a stream as MODULE:STREAM, e.g. {spec}:STREAM"
                ))
            })?;
            self.check_stream(name, stream)?;
            enable(&mut enabled, name, stream, spec)?;
        }
        let mut packages = BTreeSet::new();
        for spec in &requests.install {
            let (module, profile) = match spec.split_once('/') {
                Some((module, profile)) => (module, Some(profile)),
                None => (spec.as_str(), None),
            };
            let (name, stream) = match module.split_once(':') {
                Some((name, stream)) => (name, stream.to_string()),
                None => (module, self.stream_for(module, &enabled)?),
            };
            self.check_stream(name, &stream)?;
            enable(&mut enabled, name, &stream, spec)?;
            let profiles = match profile {
                Some(profile) => vec![profile.to_string()],
                None => self.default_profiles_of(name, &stream)?,
            };
            for profile in profiles {
                packages.extend(self.profile_packages(name, &stream, &profile)?);
            }
        }
        for (name, (stream, _)) in enabled {
            self.states.insert(name, ModuleState::Enabled(stream));
        }
        Ok(packages)
    }

    /// Which builds are active, and what that hides, for machines of `arch`.
    pub fn activate(&self, arch: &str) -> Activation {
        let ids = solvable_names(&self.streams);
        // Disabled modules take no part: none of their builds can be active.
        let candidates: Vec<usize> = (0..self.streams.len())
            .filter(|&i| self.states.get(&self.streams[i].name) != Some(&ModuleState::Disabled))
            .collect();
        let solvables: Vec<ModuleSolvable<'_>> = candidates
            .iter()
            .map(|&i| {
                let s = &self.streams[i];
                ModuleSolvable {
                    id: ids[i].clone(),
                    name: &s.name,
                    stream: &s.stream,
                    version: s.version,
                    arch: &s.arch,
                    requires: &s.requires,
                }
            })
            .collect();
        let mut jobs = Vec::new();
        let names: BTreeSet<&str> = candidates
            .iter()
            .map(|&i| self.streams[i].name.as_str())
            .collect();
        for name in names {
            match self.states.get(name) {
                Some(ModuleState::Enabled(stream)) => jobs.push(ModuleJob {
                    name_stream: format!("{name}:{stream}"),
                    weak: false,
                }),
                Some(ModuleState::Disabled) => {}
                None => {
                    if let Some(stream) = self.default_streams.get(name) {
                        jobs.push(ModuleJob {
                            name_stream: format!("{name}:{stream}"),
                            weak: true,
                        });
                    }
                }
            }
        }
        let platform = self
            .platform
            .as_ref()
            .map(|(name, stream)| (name.as_str(), stream.as_str()));
        let choice = solve_modules(arch, platform, &solvables, &jobs);
        let chosen: HashSet<&str> = choice.active.iter().map(String::as_str).collect();
        let active: Vec<bool> =
            candidates
                .iter()
                .fold(vec![false; self.streams.len()], |mut active, &i| {
                    active[i] = chosen.contains(ids[i].as_str());
                    active
                });
        self.filter(&ids, &active, choice.problems)
    }

    /// The filter for the builds `active` marks (by index; `ids` their solvable names).
    fn filter(&self, ids: &[String], active: &[bool], problems: Vec<String>) -> Activation {
        // Demodularized names of the newest active build of each solvable name and arch, gathered
        // by `name:stream.arch`.
        let mut newest: HashMap<String, &ModuleStream> = HashMap::new();
        for (i, stream) in self.streams.iter().enumerate().filter(|(i, _)| active[*i]) {
            let entry = newest
                .entry(format!("{}.{}", ids[i], stream.arch))
                .or_insert(stream);
            if stream.version > entry.version {
                *entry = stream;
            }
        }
        let mut demodularized: HashMap<String, HashSet<&str>> = HashMap::new();
        for stream in newest.values() {
            demodularized
                .entry(format!("{}.{}", stream.name_stream(), stream.arch))
                .or_default()
                .extend(stream.demodularized.iter().map(String::as_str));
        }

        let mut activation = Activation {
            problems,
            ..Default::default()
        };
        let filter = &mut activation.filter;
        for (i, stream) in self.streams.iter().enumerate() {
            let artifacts = stream.artifacts.iter().filter_map(|a| Nevra::parse(a));
            if !active[i] {
                for nevra in artifacts {
                    activation
                        .inactive_streams
                        .entry(nevra.name.clone())
                        .or_default()
                        .insert(stream.name_stream());
                    filter.exclude.insert(nevra);
                }
                continue;
            }
            activation.active.insert(stream.name_stream());
            let kept = demodularized.get(&format!("{}.{}", stream.name_stream(), stream.arch));
            for nevra in artifacts {
                if kept.is_some_and(|names| names.contains(nevra.name.as_str())) {
                    // Not modular any more: it hides nothing, but is still part of the build.
                } else if matches!(nevra.arch.as_str(), "src" | "nosrc") {
                    filter.source_names.insert(nevra.name.clone());
                } else {
                    filter.names.insert(nevra.name.clone());
                }
                filter.include.insert(nevra);
            }
        }
        // A stream with an active build is active, whatever its other builds.
        for streams in activation.inactive_streams.values_mut() {
            streams.retain(|s| !activation.active.contains(s));
        }
        activation
            .inactive_streams
            .retain(|_, streams| !streams.is_empty());
        activation
    }

    /// The stream `install=NAME` means: the enabled one, else the default.
    fn stream_for(
        &self,
        name: &str,
        enabled: &BTreeMap<String, (String, String)>,
    ) -> Result<String> {
        if let Some((stream, _)) = enabled.get(name) {
            return Ok(stream.clone());
        }
        if let Some(ModuleState::Enabled(stream)) = self.states.get(name) {
            return Ok(stream.clone());
        }
        if let Some(stream) = self.default_streams.get(name) {
            return Ok(stream.clone());
        }
        self.check_module(name)?;
        Err(
            UserError::new(format!("module {name} has no enabled or default stream"))
                .hint(format!(
                    "name the stream: {}",
                    self.streams_of(name)
                        .iter()
                        .map(|s| format!("{name}:{s}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .into(),
        )
    }

    /// The default profiles of `name:stream`; an error when it has none.
    fn default_profiles_of(&self, name: &str, stream: &str) -> Result<Vec<String>> {
        match self.default_profiles.get(&format!("{name}:{stream}")) {
            Some(profiles) if !profiles.is_empty() => Ok(profiles.clone()),
            _ => Err(UserError::new(format!(
                "module stream {name}:{stream} has no default profile"
            ))
            .hint(format!(
                "name a profile: {}",
                self.profiles_of(name, stream)
                    .iter()
                    .map(|p| format!("{name}:{stream}/{p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into()),
        }
    }

    /// The package names profile `profile` of `name:stream` installs (any of its builds).
    fn profile_packages(
        &self,
        name: &str,
        stream: &str,
        profile: &str,
    ) -> Result<BTreeSet<String>> {
        let mut found = false;
        let mut packages = BTreeSet::new();
        for build in self.builds(name, stream) {
            if let Some(rpms) = build.profiles.get(profile) {
                found = true;
                packages.extend(rpms.iter().cloned());
            }
        }
        if !found {
            let profiles = self.profiles_of(name, stream);
            return Err(UserError::new(format!(
                "module stream {name}:{stream} has no profile {profile:?}"
            ))
            .hint(if profiles.is_empty() {
                format!("{name}:{stream} has no profiles: enable it instead of installing it")
            } else {
                format!("its profiles: {}", profiles.join(", "))
            })
            .into());
        }
        Ok(packages)
    }

    /// An error unless some repo has a build of `name:stream`.
    fn check_stream(&self, name: &str, stream: &str) -> Result<()> {
        self.check_module(name)?;
        if self.builds(name, stream).next().is_some() {
            return Ok(());
        }
        Err(UserError::new(format!(
            "module {name} has no stream {stream:?} in the enabled repos"
        ))
        .hint(format!("its streams: {}", self.streams_of(name).join(", ")))
        .into())
    }

    /// An error unless some repo has a build of module `name`.
    fn check_module(&self, name: &str) -> Result<()> {
        if self.streams.iter().any(|s| s.name == name) {
            return Ok(());
        }
        let all: BTreeSet<&str> = self.streams.iter().map(|s| s.name.as_str()).collect();
        Err(
            UserError::new(format!("no module named {name:?} in the enabled repos"))
                .hint(if all.is_empty() {
                    "the enabled repos carry no modules".to_string()
                } else {
                    format!(
                        "modules there: {}",
                        all.into_iter().collect::<Vec<_>>().join(", ")
                    )
                })
                .into(),
        )
    }

    fn builds<'a>(
        &'a self,
        name: &'a str,
        stream: &'a str,
    ) -> impl Iterator<Item = &'a ModuleStream> {
        self.streams
            .iter()
            .filter(move |s| s.name == name && s.stream == stream)
    }

    fn streams_of(&self, name: &str) -> Vec<String> {
        let streams: BTreeSet<&str> = self
            .streams
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.stream.as_str())
            .collect();
        streams.into_iter().map(str::to_string).collect()
    }

    fn profiles_of(&self, name: &str, stream: &str) -> Vec<String> {
        let profiles: BTreeSet<&String> = self
            .builds(name, stream)
            .flat_map(|b| b.profiles.keys())
            .collect();
        profiles.into_iter().cloned().collect()
    }
}

/// The module solve's name of each build, `name:stream:context`: builds of one name are versions of
/// one solvable, and every version of a chosen name is active. As libdnf does, the context of a
/// build without `static_context` is not its own but its dependencies (the platform aside, sorted,
/// `NoRequires` when none), or the context of a `static_context` build of the stream with the same
/// dependencies; so builds for different platforms with the same module dependencies are versions
/// of one name.
fn solvable_names(streams: &[ModuleStream]) -> Vec<String> {
    let dependencies: Vec<String> = streams.iter().map(concentrated_requires).collect();
    let static_contexts: HashMap<(String, &str), &str> = streams
        .iter()
        .zip(&dependencies)
        .filter(|(s, _)| s.static_context)
        .map(|(s, deps)| ((s.name_stream(), deps.as_str()), s.context.as_str()))
        .collect();
    streams
        .iter()
        .zip(&dependencies)
        .map(|(s, deps)| {
            let context = if s.static_context {
                s.context.as_str()
            } else if let Some(context) = static_contexts.get(&(s.name_stream(), deps.as_str())) {
                context
            } else if deps.is_empty() {
                "NoRequires"
            } else {
                deps.as_str()
            };
            format!("{}:{}:{context}", s.name, s.stream)
        })
        .collect()
}

/// A build's run-time module dependencies but the platform, as one sorted string.
fn concentrated_requires(stream: &ModuleStream) -> String {
    let mut requires: Vec<String> = stream
        .requires
        .iter()
        .flatten()
        .filter(|(module, _)| module.as_str() != "platform")
        .map(|(module, streams)| {
            if streams.is_empty() {
                module.clone()
            } else {
                let mut streams = streams.clone();
                streams.sort();
                format!("{module}:[{}]", streams.join(","))
            }
        })
        .collect();
    requires.sort();
    requires.join(";")
}

/// The platform module of an os-release `PLATFORM_ID` (`platform:el9`).
pub fn parse_platform(platform_id: &str) -> Option<(String, String)> {
    let (name, stream) = platform_id.split_once(':')?;
    (!name.is_empty() && !stream.is_empty()).then(|| (name.to_string(), stream.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(name: &str, stream: &str, version: u64, artifacts: &[&str]) -> ModuleStream {
        ModuleStream {
            name: name.into(),
            stream: stream.into(),
            version,
            context: "c1".into(),
            arch: "x86_64".into(),
            requires: vec![BTreeMap::from([("platform".into(), vec!["el9".into()])])],
            profiles: BTreeMap::new(),
            artifacts: artifacts.iter().map(|a| a.to_string()).collect(),
            demodularized: Vec::new(),
            static_context: false,
            repo: "appstream".into(),
        }
    }

    fn requiring(mut build: ModuleStream, module: &str, streams: &[&str]) -> ModuleStream {
        build.requires[0].insert(
            module.into(),
            streams.iter().map(|s| s.to_string()).collect(),
        );
        build
    }

    fn modularity(streams: Vec<ModuleStream>, defaults: &[(&str, &str)]) -> Modularity {
        let metadata = ModuleMetadata {
            streams,
            defaults: defaults
                .iter()
                .map(|(module, stream)| ModuleDefaults {
                    module: module.to_string(),
                    stream: Some(stream.to_string()),
                    profiles: BTreeMap::new(),
                })
                .collect(),
        };
        Modularity::new(
            metadata,
            HostModules::default(),
            Some(("platform".into(), "el9".into())),
        )
    }

    fn nevra(text: &str) -> Nevra {
        Nevra::parse(text).unwrap()
    }

    #[test]
    fn defaults_activate_and_pull_in_what_they_need() {
        let modules = modularity(
            vec![
                build("perl", "5.30", 1, &["perl-0:5.30-1.x86_64"]),
                build("perl", "5.32", 1, &["perl-0:5.32-1.x86_64"]),
                requiring(
                    build("dbi", "1", 1, &["dbi-0:1-1.x86_64"]),
                    "perl",
                    &["5.32"],
                ),
                build("maven", "3", 1, &["maven-0:3-1.noarch", "maven-0:3-1.src"]),
            ],
            // perl has no default: the default dbi brings in the stream it needs.
            &[("dbi", "1")],
        );
        let activation = modules.activate("x86_64");
        assert_eq!(
            activation.active,
            BTreeSet::from(["dbi:1".to_string(), "perl:5.32".to_string()])
        );
        assert_eq!(
            activation.filter.names,
            HashSet::from(["dbi".to_string(), "perl".to_string()])
        );
        assert_eq!(
            activation.filter.exclude,
            HashSet::from([
                nevra("perl-5.30-1.x86_64"),
                nevra("maven-3-1.noarch"),
                nevra("maven-3-1.src"),
            ])
        );
        assert_eq!(
            activation.inactive_streams.get("maven"),
            Some(&BTreeSet::from(["maven:3".to_string()]))
        );
        assert!(activation.problems.is_empty(), "{:?}", activation.problems);
    }

    #[test]
    fn enabling_replaces_the_default_and_disabling_hides_everything() {
        let builds = vec![
            build("nodejs", "18", 1, &["nodejs-1:18.1-1.x86_64"]),
            build("nodejs", "20", 1, &["nodejs-1:20.1-1.x86_64"]),
        ];
        let mut modules = modularity(builds.clone(), &[("nodejs", "18")]);
        let requests = ModuleRequests {
            enable: BTreeSet::from(["nodejs:20".to_string()]),
            install: BTreeSet::new(),
        };
        assert!(modules.apply_requests(&requests).unwrap().is_empty());
        let activation = modules.activate("x86_64");
        assert_eq!(activation.active, BTreeSet::from(["nodejs:20".to_string()]));
        assert!(
            activation
                .filter
                .include
                .contains(&nevra("nodejs-1:20.1-1.x86_64"))
        );

        let host = HostModules {
            states: BTreeMap::from([("nodejs".to_string(), ModuleState::Disabled)]),
            defaults: Vec::new(),
        };
        let metadata = ModuleMetadata {
            streams: builds,
            defaults: Vec::new(),
        };
        let disabled = Modularity::new(metadata, host, Some(("platform".into(), "el9".into())));
        let activation = disabled.activate("x86_64");
        assert!(activation.active.is_empty());
        assert!(activation.filter.names.is_empty());
        assert_eq!(activation.filter.exclude.len(), 2);
    }

    #[test]
    fn builds_for_another_platform_stay_inactive_unless_named_alike() {
        let el8 = {
            let mut b = requiring(
                build("ruby", "3", 2, &["ruby-0:3.8-1.x86_64"]),
                "perl",
                &["5.26"],
            );
            b.requires[0].insert("platform".into(), vec!["el8".into()]);
            b.context = "c8".into();
            b
        };
        let modules = modularity(
            vec![build("ruby", "3", 1, &["ruby-0:3.9-1.x86_64"]), el8],
            &[("ruby", "3")],
        );
        let activation = modules.activate("x86_64");
        assert!(
            activation
                .filter
                .include
                .contains(&nevra("ruby-3.9-1.x86_64"))
        );
        assert!(
            activation
                .filter
                .exclude
                .contains(&nevra("ruby-3.8-1.x86_64"))
        );
        // No platform at all: nothing that needs one is active.
        let mut modules = modules;
        modules.platform = None;
        assert!(modules.activate("x86_64").active.is_empty());
    }

    #[test]
    fn solvable_names_follow_libdnf() {
        let plain = build("ruby", "3", 1, &[]);
        let other_platform = {
            let mut b = build("ruby", "3", 2, &[]);
            b.requires[0].insert("platform".into(), vec!["el8".into()]);
            b.context = "c8".into();
            b
        };
        let with_deps = requiring(build("ruby", "3", 3, &[]), "perl", &["5.32", "5.30"]);
        let static_context = {
            let mut b = requiring(build("ruby", "3", 4, &[]), "perl", &["5.30", "5.32"]);
            b.static_context = true;
            b.context = "fixed".into();
            b
        };
        assert_eq!(
            solvable_names(&[plain, other_platform, with_deps, static_context]),
            [
                "ruby:3:NoRequires",
                "ruby:3:NoRequires",
                "ruby:3:fixed",
                "ruby:3:fixed"
            ]
        );
    }
}
