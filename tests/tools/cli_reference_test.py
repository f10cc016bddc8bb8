#!/usr/bin/python3
"""The command reference cannot drift from the program: docs/cli.md must be what
tools/cli_reference.sh writes from the program's --help, and every option README.md's command
table shows must exist in that subcommand's --help (and every subcommand must be in the table).

Usage: cli_reference_test.py IMSAT_BINARY SOURCE_DIR
"""
import difflib
import os
import re
import subprocess
import sys


def main():
    imsat, root = sys.argv[1], sys.argv[2]
    failures = []
    generated = subprocess.run([os.path.join(root, "tools", "cli_reference.sh"), imsat],
                               capture_output=True, text=True, check=True).stdout
    with open(os.path.join(root, "docs", "cli.md")) as f:
        committed = f.read()
    if generated != committed:
        diff = "".join(list(difflib.unified_diff(committed.splitlines(True),
                                                 generated.splitlines(True),
                                                 "docs/cli.md", "--help"))[:40])
        failures.append("docs/cli.md differs from the program's --help; run "
                        "tools/cli_reference.sh > docs/cli.md\n" + diff)

    def help_of(sub):
        return subprocess.run([imsat] + sub.split() + ["--help"], capture_output=True,
                              text=True).stdout

    top = help_of("")
    subcommands = re.findall(r"^  (\w+) ", top.split("Subcommands:")[1], re.M)
    with open(os.path.join(root, "README.md")) as f:
        readme = f.read()
    rows = re.findall(r"^\| `imsat ([a-z]+)([^`]*)`", readme, re.M)
    if not rows:
        failures.append("README.md has no command table (rows starting | `imsat ...`)")
    listed = set()
    for sub, rest in rows:
        listed.add(sub)
        text = help_of(sub)
        if not text:
            failures.append(f"README.md lists `imsat {sub}`, which the program does not have")
            continue
        # Nested subcommands (`collections list|create`) are checked against their own help.
        nested = re.findall(r"^  (\w+) ", text.split("Subcommands:")[1], re.M) \
            if "Subcommands:" in text else []
        for n in nested:
            text += help_of(f"{sub} {n}")
        for flag in re.findall(r"(--[a-z][a-z0-9-]*)", rest):
            if not re.search(r"(^|[\s,])" + re.escape(flag) + r"\b", text, re.M):
                failures.append(f"README.md shows `imsat {sub} ... {flag}`, which "
                                f"`imsat {sub} --help` does not have")
    for sub in subcommands:
        if sub not in listed:
            failures.append(f"`imsat {sub}` is missing from README.md's command table")
    for f in failures:
        print("FAIL " + f)
    if failures:
        sys.exit(1)
    print(f"ok: docs/cli.md matches --help; README's table ({len(rows)} rows) matches "
          f"{len(subcommands)} subcommands")


if __name__ == "__main__":
    main()
