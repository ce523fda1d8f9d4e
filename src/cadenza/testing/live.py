"""A real ``cadenza serve`` in a subprocess, and a loopback target for it to call.

For browser tests, screenshots and demos: ``serve(workdir)`` migrates a fresh
SQLite database in ``workdir``, starts ``cadenza serve`` on 127.0.0.1 on a free
port with a known admin login (and the SSRF guard opened to 127.0.0.1 only), waits
until it answers, and stops it (SIGTERM, then SIGKILL after a grace period) on
exit. ``LoopbackTarget`` is a threaded HTTP server on 127.0.0.1 whose answer per
path a test sets. Nothing here talks to any other address.

Import it as ``cadenza.testing.live``: it is not re-exported by ``cadenza.testing``,
whose fakes need no subprocess.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway test login
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
HOLD_TIMEOUT_S = 120.0
"""The longest a held request waits for ``release`` (a hang guard, not a timing)."""


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class LiveServer:
    """A running ``cadenza serve``: where it listens and its first-start login."""

    url: str
    email: str
    password: str
    api_key: str
    log: Path

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer of ``method /api/v1{path}`` as the first-start admin's key."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the server's own http URL
            f"{self.url}/api/v1{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return json.loads(answer.read())


def _environment(workdir: Path, port: int, extra: Mapping[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "CADENZA_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'cadenza.db'}",
        "CADENZA_SECRET_KEY": "live-test-secret-0123456789abcdef",
        "CADENZA_HOST": LOOPBACK,
        "CADENZA_PORT": str(port),
        "CADENZA_ADMIN_EMAIL": ADMIN_EMAIL,
        "CADENZA_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "CADENZA_SSRF_ALLOWLIST": json.dumps([LOOPBACK]),
        "CADENZA_LOG_LEVEL": "warning",
        **extra,
    }


def _cadenza(*args: str) -> list[str]:
    return [sys.executable, "-m", "cadenza.cli", *args]


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = START_TIMEOUT_S
    step = 0.1
    waited = 0.0
    while waited < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cadenza serve exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/sign-in", timeout=5) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(step)
        waited += step
    raise RuntimeError(f"cadenza serve did not answer within {deadline} s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_S)


@contextlib.contextmanager
def serve(workdir: Path, env: Mapping[str, str] | None = None) -> Iterator[LiveServer]:
    """``cadenza serve`` over a fresh database in ``workdir`` (module docstring)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environment = _environment(workdir, port, env or {})
    subprocess.run(  # noqa: S603 - our own interpreter and module
        _cadenza("migrate"), env=environment, cwd=workdir, check=True, capture_output=True
    )
    log = workdir / "serve.log"
    url = f"http://{LOOPBACK}:{port}"
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603
            _cadenza("serve"), env=environment, cwd=workdir, stdout=sink, stderr=sink
        )
        try:
            _wait_until_up(url, process, log)
            found = re.search(r"Admin API key \(shown once\): (\S+)", log.read_text())
            key = found.group(1) if found else ""
            yield LiveServer(url, ADMIN_EMAIL, ADMIN_PASSWORD, key, log)
        finally:
            _stop(process)


@dataclass
class Answer:
    status: int = 200
    body: dict[str, object] = field(default_factory=lambda: {"status": "ok"})


class LoopbackTarget:
    """An HTTP server on 127.0.0.1 answering each path with the ``Answer`` set for it
    (200 and ``{"status": "ok"}`` by default), counting the requests per path. An
    answer can be set for the next request only (``respond_once``). A
    path can be held: its requests wait until ``release`` (so a test decides when a
    run finishes, whatever the machine's speed)."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.once: dict[str, Answer] = {}
        self.hits: Counter[str] = Counter()
        self._held: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                path = self.path.split("?")[0]
                with target._lock:
                    target.hits[path] += 1
                    gate = target._held.get(path)
                if gate is not None:
                    gate.wait(HOLD_TIMEOUT_S)
                with target._lock:
                    answer = target.once.pop(path, None) or target.answers.get(path, Answer())
                payload = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer  # noqa: N815 - the stdlib's names

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def respond(self, path: str, status: int, body: dict[str, object] | None = None) -> None:
        with self._lock:
            self.answers[path] = Answer(status, body if body is not None else {"status": status})

    def respond_once(self, path: str, status: int, body: dict[str, object]) -> None:
        """The next request to ``path`` alone gets this answer; later ones the usual."""
        with self._lock:
            self.once[path] = Answer(status, body)

    def hold(self, path: str) -> None:
        """Requests to ``path`` wait (up to ``HOLD_TIMEOUT_S``) until ``release``."""
        with self._lock:
            self._held[path] = threading.Event()

    def release(self, path: str) -> None:
        with self._lock:
            gate = self._held.pop(path, None)
        if gate is not None:
            gate.set()

    def __enter__(self) -> LoopbackTarget:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            gates = list(self._held.values())
            self._held.clear()
        for gate in gates:
            gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(STOP_TIMEOUT_S)
