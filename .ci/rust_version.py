#!/usr/bin/env python3
"""Each publishable crate declares a `rust-version` no lower than its dependencies need.

For every workspace member that may be published, finds the highest
`rust-version` among the packages it builds for a user: its normal and build
dependencies, transitively, with all its features on (docs.rs builds them,
and a user may enable any), on each platform in TARGETS. Fails, naming the crate,
its declared value, the value needed and the dependency that sets it (with the
path to it), where the declared value is lower or missing: a user on an older
compiler would then get a compile error from deep in a dependency instead of
cargo's "requires rustc X" message.

What cargo cannot see is the language our own code uses (trait upcasting needs
1.86, for instance): a crate may declare more than its dependencies need, and
the comment above each `rust-version` says what sets it.

Which packages are built: `cargo tree -p CRATE -e normal,build`. It resolves
features for that crate alone, as a user's build would; the resolve in
`cargo metadata` unifies features across the whole workspace, dev-dependencies
included, and so names packages no user builds (metrics-util's `debugging`
feature pulls in ordered-float, which needs 1.90, only for workpool-redis's
tests). Each package's `rust-version`: `cargo metadata --format-version 1`.
Both read Cargo.lock (`--locked`): the versions checked are the ones CI tests.

Usage: rust_version.py   (from anywhere in the workspace)
"""
import json
import re
import subprocess
import sys

# Dependencies under these cfgs are built only by our own test runs
# (`RUSTFLAGS="--cfg loom"`, see .ci/run), never by a user of the crates.
INTERNAL_CFGS = ("loom",)

# The platforms a user builds these crates on: Linux, macOS and Windows, on
# the architectures Rust ships a compiler for. Not `--target all`: that counts,
# for instance, wasip2 (wasm32-wasip2 pulls in `wasip2`, which needs 1.87), a
# target the crates cannot run on (no threads to pool).
TARGETS = (
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "i686-unknown-linux-gnu",
    "aarch64-apple-darwin",
    "x86_64-apple-darwin",
    "x86_64-pc-windows-msvc",
    "i686-pc-windows-msvc",
    "x86_64-pc-windows-gnu",
    "aarch64-pc-windows-msvc",
)

LINE = re.compile(r"^(\d+)(\S+) v(\S+)")


def cargo(*args):
    done = subprocess.run(["cargo", *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"cargo {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def version(text):
    """'1.85' and '1.85.0' compare equal; None (no rust-version) is lowest."""
    if not text:
        return (0,)
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def internal_edges(metadata):
    """(parent name, child name) of dependencies declared only under an internal cfg."""
    names = {p["id"]: p["name"] for p in metadata["packages"]}
    edges = set()
    for node in metadata["resolve"]["nodes"]:
        for dep in node["deps"]:
            kinds = [k for k in dep["dep_kinds"] if k["kind"] in (None, "build")]
            if kinds and all(
                k["target"] and any(f"cfg({c})" in k["target"] for c in INTERNAL_CFGS)
                for k in kinds
            ):
                edges.add((names[node["id"]], names[dep["pkg"]]))
    return edges


def built_packages(name, ver, skip):
    """(name, version, path from the crate) of each package `name` builds."""
    tree = cargo(
        "tree", "-p", f"{name}@{ver}", "-e", "normal,build", "--all-features",
        *[arg for t in TARGETS for arg in ("--target", t)], "--no-dedupe", "--prefix", "depth", "-f", "{p}", "--locked",
    )
    stack = []  # the names from the crate down to the current line's parent
    skipping_below = None
    for line in tree.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        depth, pkg, pkg_ver = int(m.group(1)), m.group(2), m.group(3)
        if skipping_below is not None:
            if depth > skipping_below:
                continue
            skipping_below = None
        del stack[depth:]
        if stack and (stack[-1], pkg) in skip:
            skipping_below = depth
            continue
        stack.append(pkg)
        yield pkg, pkg_ver, list(stack)


def main():
    metadata = json.loads(cargo("metadata", "--format-version", "1", "--locked"))
    packages = {(p["name"], p["version"]): p for p in metadata["packages"]}
    skip = internal_edges(metadata)
    members = [p for p in metadata["packages"] if p["id"] in metadata["workspace_members"]]
    failures = 0
    for crate in sorted(members, key=lambda p: p["name"]):
        if crate["publish"] == []:
            print(f"{crate['name']}: publish = false, not checked")
            continue
        declared = crate["rust_version"]
        needed, setter, path = None, None, None
        for pkg, pkg_ver, via in built_packages(crate["name"], crate["version"], skip):
            if len(via) == 1:
                continue  # the crate itself
            rv = packages[(pkg, pkg_ver)]["rust_version"]
            if version(rv) > version(needed):
                needed, setter, path = rv, f"{pkg} {pkg_ver}", via
        chain = " -> ".join(path) if path else "-"
        if version(declared) < version(needed):
            failures += 1
            print(
                f"FAIL {crate['name']}: declares rust-version {declared or '(none)'}, "
                f"its dependencies need {needed}: {setter} ({chain})"
            )
        else:
            extra = (
                "" if version(declared) == version(needed)
                else "; the rest is our own code's (see its Cargo.toml)"
            )
            print(
                f"ok   {crate['name']}: declares {declared}, dependencies need "
                f"{needed or 'nothing'}: {setter or '-'} ({chain}){extra}"
            )
    if failures:
        sys.stdout.flush()
        sys.exit(f"{failures} crate(s) declare a rust-version lower than their dependencies need")


if __name__ == "__main__":
    main()
