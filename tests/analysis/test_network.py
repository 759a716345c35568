"""Nothing leaves the machine: studio commands traced with strace make no network attempt.

MediaPipe's usage metrics and ONNX Runtime's telemetry are what would (docs/privacy.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from studio.core.analysis import offline

ROOT = Path(__file__).resolve().parents[2]
STRACE = shutil.which("strace")
needs_strace = pytest.mark.skipif(
    STRACE is None, reason="strace is not installed (`make test` installs it: Makefile DEBS)")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="seccomp containment is Linux only")

#: Variables under which ONNX Runtime 1.31 keeps its telemetry quiet by itself (its own switch
#: and the marks of CI services, CI=true among them): a user's machine has none of them.
TELEMETRY_QUIETING_ENV = (
    "ORT_DISABLE_TELEMETRY", "ORT_RUNNING_UNIT_TESTS", "CI", "TF_BUILD", "GITHUB_ACTIONS",
    "GITLAB_CI", "CIRCLECI", "TRAVIS", "JENKINS_URL", "CODEBUILD_BUILD_ID", "BUILDKITE",
    "TEAMCITY_VERSION", "APPVEYOR", "BITBUCKET_BUILD_NUMBER")
#: A connection to any IPv4/IPv6 address, or a name lookup: to a DNS server (port 53), to
#: nscd or to systemd-resolved (which would look the name up for us).
INET_CONNECT = re.compile(r"\bconnect\(\d+, \{sa_family=AF_INET6?,")
DNS_PORT = re.compile(r"\b(connect|sendto|sendmsg|sendmmsg)\(.*htons\(53\)")
RESOLVER_SOCKET = re.compile(
    r'\bconnect\(\d+, \{sa_family=AF_UNIX, sun_path="(/var)?/run/(nscd/socket|systemd/resolve/)')


def network_attempts(trace: str) -> list[str]:
    """The lines of an ``strace -f -e trace=network`` log that reach for the network."""
    patterns = (INET_CONNECT, DNS_PORT, RESOLVER_SOCKET)
    return [line for line in trace.splitlines() if any(p.search(line) for p in patterns)]


def traced(args: list[str], tmp_path: Path, timeout: int = 300
           ) -> tuple[subprocess.CompletedProcess, str]:
    """Run ``python ARGS`` under strace; its cache folder is a fresh one inside tmp_path."""
    log = tmp_path / "network.trace"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "QT_QPA_PLATFORM": "offscreen"}
    for name in (offline.ALLOW_METRICS_ENV, *TELEMETRY_QUIETING_ENV):
        env.pop(name, None)  # a user's machine: the studio must switch telemetry off itself
    proc = subprocess.run(
        [STRACE, "-f", "-qq", "-e", "trace=network", "-o", str(log), "--",
         sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout)
    if not log.exists():
        pytest.fail(f"strace could not trace (ptrace not permitted?): {proc.stderr[-2000:]}")
    return proc, log.read_text(errors="replace")


def telemetry_store(tmp_path: Path) -> list[Path]:
    """What ONNX Runtime's telemetry would leave: a device id and an event database."""
    return sorted((tmp_path / "cache").glob("Microsoft/**/*"))


@needs_strace
def test_the_trace_sees_a_connection_made_by_a_thread(tmp_path):
    """The check itself: a loopback connection from a second thread is caught."""
    code = ("import socket, threading\n"
            "def go():\n"
            "    with socket.socket() as s: s.connect_ex(('127.0.0.1', 9))\n"
            "t = threading.Thread(target=go); t.start(); t.join()\n")
    proc, trace = traced(["-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    attempts = network_attempts(trace)
    assert len(attempts) == 1 and "127.0.0.1" in attempts[0], trace


@needs_strace
@pytest.mark.data
@pytest.mark.slow
def test_analyze_a_real_face_and_the_demo_without_network(tmp_path, utk_face_path):
    proc, trace = traced(["-m", "studio", "analyze", str(utk_face_path), "--demo", "--json"],
                         tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert [len(r["faces"]) for r in records] == [1, 1]  # the models really ran
    assert network_attempts(trace) == []
    assert telemetry_store(tmp_path) == []


@needs_strace
@pytest.mark.data
@pytest.mark.slow
def test_batch_without_network(tmp_path, genki_test):
    photos = tmp_path / "photos"
    photos.mkdir()
    for item in genki_test[:3]:
        shutil.copy(item.path, photos / item.path.name)
    workspace = tmp_path / "w.studio"
    proc, trace = traced(["-m", "studio", "batch", str(photos), "--workspace", str(workspace),
                          "--candidates", "1", "--methods", "gan", "--workers", "2",
                          "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert '"candidates_pending": ' in proc.stdout and workspace.exists()
    assert network_attempts(trace) == []
    assert telemetry_store(tmp_path) == []


def _open_socket() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM):
        return "opened"


def _open_socket_from_a_new_thread() -> str:
    result: list[str] = []

    def run() -> None:
        try:
            result.append(_open_socket())
        except PermissionError as exc:
            result.append(f"refused: {exc}")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result[0]


@linux_only
def test_without_network_refuses_sockets_to_the_call_and_its_threads(monkeypatch):
    monkeypatch.delenv(offline.ALLOW_METRICS_ENV, raising=False)
    with pytest.raises(PermissionError):
        offline.without_network(_open_socket)
    assert offline.without_network(_open_socket_from_a_new_thread).startswith("refused")
    assert _open_socket() == "opened"  # the caller's own thread keeps its network
    assert offline.without_network(sorted, [3, 1, 2]) == [1, 2, 3]


def test_without_network_can_be_waived_by_the_user(monkeypatch):
    monkeypatch.setenv(offline.ALLOW_METRICS_ENV, "1")
    assert offline.without_network(_open_socket) == "opened"
