"""Attack, against a real uvicorn: eight anonymous 28 MiB ``POST /verify`` bodies at once. Each is a 401
answered after the headers, and the server process's peak RSS stays small (before: 729 MB)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tests.live import free_port, prepare_data_dir, uvicorn_command, wait_for
from tests.paths import REPO

pytestmark = pytest.mark.slow

BODY = 28 * 1024 * 1024
CHUNK = 256 * 1024
PEAK_RSS_BOUND_MB = 300


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _anonymous_post(port: int, statuses: list[int]) -> None:
    head = (
        "POST /verify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {BODY}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + b"{" + b" " * (CHUNK - 1))
        sent = CHUNK
        reply = b""
        try:
            while sent < BODY and not reply:  # keep pushing the body until the answer arrives
                sock.sendall(b" " * CHUNK)
                sent += CHUNK
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    reply = sock.recv(4096)
                sock.setblocking(True)
        except OSError:
            pass  # the server closed the connection after answering
        sock.settimeout(30)
        while b"\r\n" not in reply:
            more = sock.recv(4096)
            if not more:
                break
            reply += more
    statuses.append(int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0)


def test_eight_anonymous_28mib_bodies_keep_the_server_small(tmp_path):
    env = {**os.environ, "CAP_ENV": "dev", "CAP_DATA_DIR": str(tmp_path / "var"), "NO_COLOR": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    prepare_data_dir(env)
    port = free_port()
    proc = subprocess.Popen(
        uvicorn_command(port), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(f"http://127.0.0.1:{port}", proc)
        baseline = _peak_rss_mb(proc.pid)
        statuses: list[int] = []
        threads = [threading.Thread(target=_anonymous_post, args=(port, statuses)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        peak = _peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert statuses == [401] * 8
    assert peak < PEAK_RSS_BOUND_MB, f"server peak RSS {peak:.0f} MB (baseline {baseline:.0f} MB)"
    assert peak - baseline < 64, f"eight anonymous bodies grew the server by {peak - baseline:.0f} MB"
