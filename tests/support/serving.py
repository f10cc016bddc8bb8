"""What the Python tests that run a real `imsat serve` share: failing with a message, free ports,
starting a server and waiting until it answers, and stopping it.

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
    from serving import check, fail, free_port, start_server, stop_server
"""
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)
    print("ok:", message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(command, port, path="/healthz", what="the server", timeout=30, **popen):
    """Starts `command` (an `imsat serve ...` argument list; stdout discarded unless `popen` says
    otherwise) and waits until GET `path` on `port` answers 200; fails naming `what` when the
    process exits first or `timeout` seconds pass."""
    popen.setdefault("stdout", subprocess.DEVNULL)
    proc = subprocess.Popen(command, **popen)
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
                if r.status == 200:
                    return proc
        except (OSError, urllib.error.HTTPError):
            pass
        if proc.poll() is not None:
            fail(f"{what} exited with {proc.returncode} before answering on port {port}")
        if time.time() > deadline:
            stop_server(proc)
            fail(f"{what} did not answer on port {port} within {timeout} s")
        time.sleep(0.05)


def stop_server(proc):
    """SIGTERM, then SIGKILL if it has not stopped within 10 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
