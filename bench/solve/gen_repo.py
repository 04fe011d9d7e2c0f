#!/usr/bin/env python3
"""Writes a large synthetic rpm-md repo (metadata only) for the solve benchmark.

usage: gen_repo.py OUTDIR [PACKAGES] [BASE_LIBS] [modular]

The graph is shaped like a distribution's: libraries that depend on a few other libraries and on the
base image (`base-lib-N`, which the benchmark's base OS ships), applications that depend on libraries
with versioned requires, virtual provides (`cap-N`), file dependencies (`/usr/bin/tool-N`) and rich
dependencies (`(a or b)`, `(a if b)`); a tenth of the packages come in two versions. Deterministic.

With `modular`, a tenth of the names (every tenth, from the fifth) also come from module streams, as
on a RHEL AppStream: modules of ten names each with streams `3` and `4` (versions 3.0 and 4.0 of
their names), the even modules with stream 3 as default; `OUTDIR/modules.yaml` is written for
modifyrepo_c to add.
"""
import gzip
import hashlib
import os
import random
import sys
from xml.sax.saxutils import escape

out = sys.argv[1]
total = int(sys.argv[2]) if len(sys.argv) > 2 else 60000
base_libs = int(sys.argv[3]) if len(sys.argv) > 3 else 500
modular = len(sys.argv) > 4 and sys.argv[4] == "modular"
libs = total // 5
rng = random.Random(42)

FLAGS = {">=": "GE", "<=": "LE", "=": "EQ", ">": "GT", "<": "LT"}


def entry(name, op=None, ver=None):
    if op is None:
        return f'<rpm:entry name="{escape(name)}"/>'
    return f'<rpm:entry name="{escape(name)}" flags="{FLAGS[op]}" epoch="0" ver="{ver}"/>'


def lib_name(i):
    return f"lib{i:05d}"


def app_name(i):
    return f"app{i:05d}"


packages = []  # (name, version, arch, provides, requires, files)
for i in range(total):
    is_lib = i < libs
    name = lib_name(i) if is_lib else app_name(i)
    arch = "noarch" if i % 7 == 0 else "x86_64"
    provides = [entry(name, "=", "2.0")]
    requires = []
    files = [f"/usr/share/doc/{name}/README", f"/usr/share/licenses/{name}/COPYING"]
    if is_lib:
        files += [f"/usr/lib64/{name}.so.2", f"/usr/lib64/{name}.so.2.0.0"]
        provides.append(entry(f"{name}.so.2()(64bit)"))
        if i % 50 == 0:
            provides.append(entry(f"cap-{i // 50}"))
        if i % 40 == 0:
            files.append(f"/usr/bin/tool-{i}")
        for _ in range(rng.randint(0, 2)):
            if i > 0:
                requires.append(entry(f"{lib_name(rng.randrange(max(0, i - 3000), i))}.so.2()(64bit)"))
        if rng.random() < 0.5:
            requires.append(entry(f"base-lib-{rng.randrange(base_libs)}"))
    else:
        files += [f"/usr/bin/{name}", f"/usr/share/{name}/data.json", f"/usr/share/man/man1/{name}.1.gz"]
        for _ in range(rng.randint(1, 4)):
            requires.append(entry(lib_name(rng.randrange(libs)), ">=", "1.0"))
        if rng.random() < 0.2:
            requires.append(entry(f"cap-{rng.randrange(libs // 50)}"))
        if rng.random() < 0.15:
            requires.append(entry(f"/usr/bin/tool-{rng.randrange(libs // 40) * 40}"))
        if rng.random() < 0.1:
            a, b = lib_name(rng.randrange(libs)), lib_name(rng.randrange(libs))
            requires.append(entry(f"({a} or {b})"))
        if rng.random() < 0.05:
            a, b = lib_name(rng.randrange(libs)), lib_name(rng.randrange(libs))
            requires.append(entry(f"({a} if {b})"))
    versions = ["2.0"] if i % 10 else ["1.0", "2.0"]
    if modular and i % 10 == 5:
        versions += ["3.0", "4.0"]
    for version in versions:
        packages.append((name, version, arch, provides, requires, files))


def modules_yaml():
    """Module streams over the names i % 10 == 5, ten names a module."""
    names = [(lib_name(i) if i < libs else app_name(i), "noarch" if i % 7 == 0 else "x86_64")
             for i in range(5, total, 10)]
    for m in range(0, len(names), 10):
        group = names[m:m + 10]
        module = f"mod{m // 10:04d}"
        for stream in ("3", "4"):
            artifacts = "".join(f"    - {n}-0:{stream}.0-1.{a}\n" for n, a in group)
            yield (
                f"---\ndocument: modulemd\nversion: 2\ndata:\n  name: {module}\n  stream: \"{stream}\"\n"
                f"  version: 1\n  context: bench\n  arch: x86_64\n  summary: benchmark module\n"
                f"  description: Synthetic.\n  license:\n    module: [MIT]\n"
                f"  dependencies:\n  - requires:\n      platform: [el9]\n"
                f"  profiles:\n    default:\n      rpms: [{group[0][0]}]\n"
                f"  artifacts:\n    rpms:\n{artifacts}...\n"
            )
        if (m // 10) % 2 == 0:
            yield (
                f"---\ndocument: modulemd-defaults\nversion: 1\ndata:\n  module: {module}\n"
                f"  stream: \"3\"\n...\n"
            )


def pkgid(name, version, arch):
    return hashlib.sha256(f"{name}-{version}-1.{arch}".encode()).hexdigest()


def primary_xml():
    yield f'<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{len(packages)}">\n'
    for name, version, arch, provides, requires, files in packages:
        nvra = f"{name}-{version}-1.{arch}"
        primary_files = "".join(f"<file>{f}</file>" for f in files if f.startswith("/usr/bin/"))
        yield (
            f'<package type="rpm"><name>{name}</name><arch>{arch}</arch>'
            f'<version epoch="0" ver="{version}" rel="1"/>'
            f'<checksum type="sha256" pkgid="YES">{pkgid(name, version, arch)}</checksum>'
            f"<summary>{name} benchmark package</summary><description>Synthetic.</description>"
            f'<packager/><url/><time file="1700000000" build="1700000000"/>'
            f'<size package="{20000 + len(name) * 100}" installed="{80000 + len(files) * 1000}" archive="{81000}"/>'
            f'<location href="Packages/{name[0]}/{nvra}.rpm"/>'
            f"<format><rpm:license>MIT</rpm:license><rpm:provides>{''.join(provides)}</rpm:provides>"
            f"<rpm:requires>{''.join(requires)}</rpm:requires>{primary_files}</format></package>\n"
        )
    yield "</metadata>\n"


def filelists_xml():
    yield f'<?xml version="1.0" encoding="UTF-8"?>\n<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="{len(packages)}">\n'
    for name, version, arch, _, _, files in packages:
        listed = "".join(f"<file>{f}</file>" for f in files)
        yield (
            f'<package pkgid="{pkgid(name, version, arch)}" name="{name}" arch="{arch}">'
            f'<version epoch="0" ver="{version}" rel="1"/>{listed}</package>\n'
        )
    yield "</filelists>\n"


def write(kind, chunks):
    raw = "".join(chunks).encode()
    compressed = gzip.compress(raw, compresslevel=6, mtime=0)
    digest = hashlib.sha256(compressed).hexdigest()
    location = f"repodata/{digest}-{kind}.xml.gz"
    with open(os.path.join(out, location), "wb") as f:
        f.write(compressed)
    return (
        f'<data type="{kind}"><checksum type="sha256">{digest}</checksum>'
        f'<open-checksum type="sha256">{hashlib.sha256(raw).hexdigest()}</open-checksum>'
        f'<location href="{location}"/><timestamp>1700000000</timestamp>'
        f"<size>{len(compressed)}</size><open-size>{len(raw)}</open-size></data>\n"
    )


os.makedirs(os.path.join(out, "repodata"), exist_ok=True)
records = write("primary", primary_xml()) + write("filelists", filelists_xml())
with open(os.path.join(out, "repodata/repomd.xml"), "w") as f:
    f.write(
        '<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo">\n'
        f"<revision>1700000000</revision>\n{records}</repomd>\n"
    )
if modular:
    with open(os.path.join(out, "modules.yaml"), "w") as f:
        f.write("".join(modules_yaml()))
print(f"{len(packages)} packages ({libs} libraries) in {out}" + (", modular" if modular else ""))
