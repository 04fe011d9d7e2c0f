"""Resolve an install with dnf's own API: the reference our transactions are compared with.

usage: dnf_resolve.py INSTALLROOT REPOSDIR CACHEDIR RELEASEVER BASEARCH SPEC...
A SPEC is a package to install, `--enable=NAME:STREAM` (dnf module enable) or
`@NAME:STREAM/PROFILE` (dnf module install).
Prints one JSON object: {"install": [NEVRA...]} or {"error": "..."}.
The installroot holds the base rpmdb (and the host's etc/os-release and etc/dnf/modules.d, for
modules); HOME must point at a .rpmmacros that sets %_dbpath to it.
"""
import json
import sys

import dnf
import dnf.exceptions
import dnf.module.module_base

installroot, reposdir, cachedir, releasever, basearch, *packages = sys.argv[1:]

base = dnf.Base()
conf = base.conf
conf.installroot = installroot
# Through the API, reposdir is taken as given (the CLI would look inside the installroot).
conf.reposdir = [reposdir]
conf.cachedir = cachedir
conf.gpgcheck = False
conf.skip_if_unavailable = False
conf.substitutions["releasever"] = releasever
conf.substitutions["basearch"] = basearch
conf.substitutions["arch"] = basearch
try:
    base.read_all_repos()
    base.fill_sack(load_system_repo=True)
    modules = dnf.module.module_base.ModuleBase(base)
    enable = [p[len("--enable="):] for p in packages if p.startswith("--enable=")]
    if enable:
        modules.enable(enable)
    profiles = [p[1:] for p in packages if p.startswith("@")]
    if profiles:
        modules.install(profiles)
    for package in packages:
        if not package.startswith(("--enable=", "@")):
            base.install(package)
    base.resolve()
    installs = sorted(str(p) for p in base.transaction.install_set)
    removals = sorted(str(p) for p in base.transaction.remove_set)
    if removals:
        print(json.dumps({"error": "removes base packages: " + " ".join(removals)}))
    else:
        print(json.dumps({"install": installs}))
except dnf.exceptions.Error as err:
    print(json.dumps({"error": str(err)}))
