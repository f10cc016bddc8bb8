#!/usr/bin/env bash
# Fails (and lists the files) when a tracked C++ file differs from what clang-format (Google base,
# 100 columns; .clang-format) makes of it. Fix with:
#   git ls-files '*.cpp' '*.h' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
bad=()
while IFS= read -r f; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then bad+=("$f"); fi
done < <(git ls-files '*.cpp' '*.h')
if [ ${#bad[@]} -gt 0 ]; then
  echo "check_format.sh: these files are not clang-formatted: ${bad[*]}" >&2
  echo "check_format.sh: run: git ls-files '*.cpp' '*.h' | xargs clang-format -i" >&2
  exit 1
fi
echo "check_format.sh: $(git ls-files '*.cpp' '*.h' | wc -l) files formatted" >&2
