//! A test host with a package repo: a sysroot deployed from a vendor base, an rpm-md repo served over
//! HTTP on 127.0.0.1, and a `repos.d` naming it.

use std::path::PathBuf;
use std::process::Output;

use pkglayer_testkit::{RepoServer, TestHost, TestPackage, base_packages, create_repo};

use super::Pkglayer;

pub struct RepoHost {
    pub host: TestHost,
    pub server: RepoServer,
    pub reposdir: PathBuf,
}

impl RepoHost {
    /// A host on `base` with a repo of the packages `packages` gives (it sees the server, for
    /// packages that must name its URL).
    pub fn new(
        base: &[TestPackage],
        packages: impl FnOnce(&RepoServer) -> Vec<TestPackage>,
    ) -> Self {
        Self::with_sysroot_prepared(base, packages, |_| Ok(()))
    }

    /// A host on base version 1 of the standard base packages, with a repo of `packages`.
    pub fn serving(packages: Vec<TestPackage>) -> Self {
        Self::new(&base_packages("1"), |_| packages)
    }

    /// Like [`RepoHost::new`], with `prepare` run on the sysroot's directory before the sysroot is
    /// made in it.
    pub fn with_sysroot_prepared(
        base: &[TestPackage],
        packages: impl FnOnce(&RepoServer) -> Vec<TestPackage>,
        prepare: impl FnOnce(&std::path::Path) -> anyhow::Result<()>,
    ) -> Self {
        let host = TestHost::with_base_prepared(base, prepare).unwrap();
        let www = host.dir().join("www");
        std::fs::create_dir_all(&www).unwrap();
        let server = RepoServer::serve(&www).unwrap();
        create_repo(&www.join("repo"), &packages(&server), "gz").unwrap();
        let reposdir = host.dir().join("repos.d");
        std::fs::create_dir_all(&reposdir).unwrap();
        std::fs::write(
            reposdir.join("test.repo"),
            format!("[test]\nbaseurl={}\ngpgcheck=0\n", server.url("repo/")),
        )
        .unwrap();
        RepoHost {
            host,
            server,
            reposdir,
        }
    }

    /// pkglayer on the host, to run; verbs that read repos get the test repo.
    pub fn command(&self, args: &[&str]) -> Pkglayer {
        let command = Pkglayer::new(&self.host.sysroot.path).args(args);
        if matches!(
            args.first(),
            Some(
                &("install"
                    | "uninstall"
                    | "upgrade"
                    | "refresh-md"
                    | "search"
                    | "module"
                    | "override"
                    | "reset"
                    | "deploy"
                    | "rebase")
            )
        ) {
            command.reposdir(&self.reposdir)
        } else {
            command
        }
    }

    /// Runs pkglayer on the host; verbs that read repos get the test repo.
    pub fn pkglayer(&self, args: &[&str]) -> Output {
        self.command(args).output()
    }

    /// Commits of the deployments, default first.
    pub fn deployments(&self) -> Vec<String> {
        let status = self.host.sysroot.admin_status().unwrap();
        status.into_iter().map(|e| e.checksum).collect()
    }

    /// The default deployment's tree.
    pub fn newest(&self) -> PathBuf {
        self.host.sysroot.deployment_dirs().unwrap()[0].clone()
    }

    /// Deployments, their origin files and the repo's refs: what a refused operation must leave
    /// exactly as it was.
    pub fn snapshot(&self) -> (Vec<String>, Vec<String>, String) {
        let deployments = self.deployments();
        let origins = (0..deployments.len())
            .map(|i| self.host.sysroot.origin(i).unwrap())
            .collect();
        let refs = self.host.sysroot.ostree(&["refs"]).unwrap();
        (deployments, origins, refs)
    }

    /// `ostree fsck` of the sysroot's repo passes.
    pub fn fsck(&self) {
        self.host.sysroot.ostree(&["fsck", "--quiet"]).unwrap();
    }
}
