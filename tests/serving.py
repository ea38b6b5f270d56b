"""`facesearch serve` as a real process on a free loopback port, for the HTTP and page tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(home: Path) -> dict[str, str]:
    return {**os.environ, "FACESEARCH_HOME": str(home), "FACESEARCH_TOKEN": TOKEN}


@contextmanager
def served(home: Path) -> Iterator[str]:
    """The base URL of a server on ``home``; afterwards, its log must hold no traceback."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "facesearch.cli.main", "serve", "--port", str(port)], env=cli_env(home),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            assert server.poll() is None, server.communicate()[0]
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        log = server.communicate(timeout=30)[0]
    assert "Traceback" not in log, log
