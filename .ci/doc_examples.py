#!/usr/bin/env python3
"""Every public method and function of the library crates has an example.

Scans `pub fn` items (not `pub(crate)`, not in tests, not in private
modules' `pub(crate)` types) of the given source trees and fails, listing
each, where the doc comment above one has no code block (```). A method
whose doc says `# Examples` elsewhere by reference does not count: each has
its own.

Usage: doc_examples.py DIR...
"""
import re
import sys
from pathlib import Path

PUB_FN = re.compile(r"^\s*pub (const )?(async )?(unsafe )?fn (\w+)")


def items(path):
    lines = path.read_text().splitlines()
    in_tests = False
    depth_tests = None
    depth = 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        if re.match(r"#\[cfg\((test|loom)\)\]", stripped):
            # The next `mod` opens a test-only module: skip to its end.
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if nxt.startswith("mod ") and nxt.endswith("{"):
                in_tests = True
                depth_tests = depth
        depth += line.count("{") - line.count("}")
        if in_tests:
            if depth <= depth_tests and "}" in line:
                in_tests = False
            continue
        m = PUB_FN.match(line)
        if not m:
            continue
        # Its doc comment: the `///` lines above, past attributes.
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("#["):
            j -= 1
        doc = []
        while j >= 0 and lines[j].strip().startswith("///"):
            doc.append(lines[j])
            j -= 1
        has_example = any("```" in d for d in doc)
        yield m.group(4), i + 1, has_example


def main():
    missing = []
    total = 0
    for root in sys.argv[1:]:
        for path in sorted(Path(root).rglob("*.rs")):
            # internals.rs: hidden from the docs behind the `internals`
            # feature, for benches only, not an API.
            if "tests" in path.parts or path.name in ("loom.rs", "internals.rs"):
                continue
            for name, line, ok in items(path):
                total += 1
                if not ok:
                    missing.append(f"{path}:{line}: {name}")
    print(f"{total} public functions and methods, {total - len(missing)} with an example")
    if missing:
        print("without an example:")
        print("\n".join("  " + m for m in missing))
        sys.exit(1)


if __name__ == "__main__":
    main()
