#!/usr/bin/env bash
# The Debian package: built by CPack from the build folder, unpacked into a scratch root
# (dpkg -x), and run from there: --version, the manual page and the bash completion, then a
# small train, index and search with the installed program. systemd-analyze checks the unit
# where it is installed.
#
#   package_test.sh BUILD_DIR VERSION
set -euo pipefail
build=$1
version=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }

cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" > "$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack"; }
deb=$(ls "$work"/out/imsat_*.deb)
ok "built $(basename "$deb")"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in librocksdb libtorch libopenblas0-pthread; do
  [[ "$depends" == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
ok "Depends names the Debian runtime packages: $depends"
dpkg -x "$deb" "$work/root"
imsat=$work/root/usr/bin/imsat
[ "$("$imsat" --version)" = "imsat $version" ] || fail "installed --version: $("$imsat" --version)"
ok "installed imsat --version"
for f in usr/share/man/man1/imsat.1 usr/share/bash-completion/completions/imsat \
         etc/imsat/serve.toml lib/systemd/system/imsat.service; do
  [ -s "$work/root/$f" ] || fail "the package lacks $f"
done
grep -q -- "--max-body-bytes" "$work/root/usr/share/man/man1/imsat.1" ||
  fail "the manual page lacks serve's options"
if command -v man >/dev/null; then
  man -l "$work/root/usr/share/man/man1/imsat.1" 2>/dev/null | grep -q "imsat serve" ||
    fail "the manual page does not render"
fi
bash -n "$work/root/usr/share/bash-completion/completions/imsat" || fail "completion syntax"
words=$(bash -c "source '$work/root/usr/share/bash-completion/completions/imsat';
  COMP_WORDS=(imsat serve --max-b); COMP_CWORD=2; _imsat; echo \${COMPREPLY[*]}")
[ "$words" = "--max-body-bytes --max-batch" ] || fail "completion of 'imsat serve --max-b': $words"
ok "manual page and completion"
# The example settings are valid settings of the installed program.
"$imsat" serve --config "$work/root/etc/imsat/serve.toml" --print-config > /dev/null ||
  fail "etc/imsat/serve.toml is refused"
ok "etc/imsat/serve.toml is accepted by imsat serve --config"

/usr/bin/python3 - "$work/v.npy" <<'PY'
import sys
import numpy as np
rng = np.random.default_rng(0)
centres = rng.normal(size=(4, 16)).astype(np.float32)
x = np.repeat(centres, 50, axis=0) + 0.05 * rng.normal(size=(200, 16)).astype(np.float32)
np.save(sys.argv[1], x.astype(np.float32))
PY
"$imsat" train --data "$work/v.npy" --method itq --bits 8 --out "$work/m.model" --quiet
"$imsat" index --model "$work/m.model" --data "$work/v.npy" --db "$work/store" --quiet
hits=$("$imsat" search --db "$work/store" --key 0 -k 5 --json)
/usr/bin/python3 -c '
import json, sys
hits = json.loads(sys.argv[1])["hits"]
keys = [int(h["key"]) for h in hits]
assert len(keys) == 5 and all(k < 50 for k in keys), keys  # the first cluster: rows 0-49
' "$hits" || fail "installed search: $hits"
ok "installed train, index and search"
if command -v systemd-analyze >/dev/null; then
  # The unit as installed, with ExecStart pointing at the scratch root's program (verify checks
  # that it is executable); the manual page is not installed system-wide, so --man=no.
  sed "s|/usr/bin/imsat|$imsat|" "$work/root/lib/systemd/system/imsat.service" \
    > "$work/imsat.service"
  systemd-analyze verify --man=no "$work/imsat.service" || fail "systemd-analyze verify"
  ok "systemd-analyze verify"
else
  echo "note: systemd-analyze is not installed here; the unit was not verified"
fi
echo PASS
