# Sourced by the HTTP benchmark scripts (bash, set -euo pipefail): the repository root and the
# imsat binary, a scratch folder removed on exit, the server a script starts (in $server) stopped
# on exit, wrk required, and helpers to wait for a server and to stop it.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
imsat="$root/build/tools/imsat"
dir=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }

# Waits (up to 20 s) until the server on port $1 answers /healthz.
wait_for_server() {
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return 0
    sleep 0.2
  done
  echo "no server answered on port $1" >&2
  return 1
}

# Stops the server in $server and waits for it to exit.
stop_server() {
  kill -TERM "$server"
  wait "$server" 2>/dev/null || true
  server=
}
