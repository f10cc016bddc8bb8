#!/usr/bin/env bash
# Writes the imsat(1) manual page from the program's own --help (help2man), with one section per
# subcommand holding that subcommand's --help, so the page cannot drift from the options the
# program parses. CMake runs it at build time; `cmake --install` puts the page in share/man/man1.
#
#   tools/man_page.sh IMSAT OUT.1
set -euo pipefail
imsat=$1
out=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ln -s "$(cd "$(dirname "$imsat")" && pwd)/$(basename "$imsat")" "$work/imsat"
run() { "$work/imsat" "$@"; }
subcommands() { run "$@" --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }'; }
# roff: a backslash is \e, and a line must not start with a dot or a quote.
verbatim() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
{
  echo "[SYNOPSIS]"
  echo ".B imsat"
  echo "SUBCOMMAND [OPTIONS]"
  echo "[COMMANDS]"
  for sub in $(subcommands); do
    echo ".SS imsat $sub"
    echo ".nf"
    run "$sub" --help | verbatim
    echo ".fi"
    for nested in $(subcommands "$sub"); do
      echo ".SS imsat $sub $nested"
      echo ".nf"
      run "$sub" "$nested" --help | verbatim
      echo ".fi"
    done
  done
  echo "[FILES]"
  echo "/etc/imsat/serve.toml: the settings of the imsat service (imsat serve --config)."
  echo "[SEE ALSO]"
  echo "The HTTP API: GET /openapi.json on a running server, and docs/http.md in the source."
} > "$work/include"
help2man --no-info --no-discard-stderr --section 1 \
  --name "learned binary hash codes (IMSAT) and Hamming search" \
  --include "$work/include" --output "$out" "$work/imsat"
