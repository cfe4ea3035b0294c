"""Helpers for the sender's tests: run ``python -m sender``, a scripted loopback HTTP server."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.servers import REPO

#: One scored invoice, as the sender logs it.
SCORED_LINE = re.compile(
    r"invoice_id=(?P<id>\S+) fraud_probability=(?P<p>[0-9.]+) prediction=(?P<pred>[01])"
)
SUMMARY_LINE = re.compile(r"summary sent=(?P<sent>\d+) scored=(?P<scored>\d+) .*")


class SenderProcess:
    """``python -m sender`` in a subprocess; its log lines collected as they come."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Settings from a developer's environment must not leak into the tests.
        for name in list(full_env):
            if name.startswith("INVOICE_FRAUD_"):
                del full_env[name]
        full_env.update(env or {})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sender", *args],
            cwd=REPO,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _drain(self, timeout: float) -> bool:
        """Move queued lines to :attr:`lines`; False once the output has ended."""
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            return True
        if line is None:
            self._queue.put(None)
            return False
        self.lines.append(line)
        return True

    def wait_for(self, pattern: str, *, count: int = 1, timeout: float = 30.0) -> list[str]:
        """Wait until ``count`` lines match ``pattern``; fail with the output otherwise."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matches = [line for line in self.lines if regex.search(line)]
            if len(matches) >= count:
                return matches
            if not self._drain(0.1):
                break
        matches = [line for line in self.lines if regex.search(line)]
        if len(matches) >= count:
            return matches
        raise AssertionError(
            f"wanted {count} line(s) matching {pattern!r} within {timeout}s; output:\n"
            + self.output()
        )

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit and collect all its output; return the exit code."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self._collect()
            raise AssertionError(
                f"sender still running after {timeout}s:\n{self.output()}"
            ) from None
        self._collect()
        return code

    def _collect(self) -> None:
        """Take every remaining line once the process has exited."""
        self._reader.join(timeout=5)
        while not self._queue.empty() and self._drain(0):
            pass

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM the sender; return its exit code and how long it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.wait(timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=10)

    def close(self) -> None:
        """Kill the sender if it still runs and release its pipe."""
        if self.process.poll() is None:
            self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def output(self) -> str:
        return "\n".join(self.lines)

    def scored(self) -> list[tuple[str, float, int]]:
        """(invoice id, probability, prediction) of every scored-invoice line so far."""
        found = []
        for line in self.lines:
            match = SCORED_LINE.search(line)
            if match:
                found.append((match["id"], float(match["p"]), int(match["pred"])))
        return found


@contextlib.contextmanager
def running_sender(*args: str, env: dict[str, str] | None = None) -> Iterator[SenderProcess]:
    """A :class:`SenderProcess` that is killed if the test leaves it running."""
    sender = SenderProcess(*args, env=env)
    try:
        yield sender
    finally:
        sender.close()


@dataclass
class ScriptedServer:
    """A real HTTP server on loopback answering each path from a script of replies.

    ``replies[path]`` is a list of ``(status, json_body)``; each request takes the next one,
    and the last one repeats. Requests are recorded as ``(method, path, body)``.
    """

    replies: dict[str, list[tuple[int, object]]]
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    url: str = ""

    def handle(self, method: str, path: str, body: object) -> tuple[int, object]:
        self.requests.append((method, path, body))
        script = self.replies.get(path) or [(404, {"error": "not found"})]
        return script.pop(0) if len(script) > 1 else script[0]

    def count(self, path: str) -> int:
        return sum(1 for _, p, _ in self.requests if p == path)


@contextlib.contextmanager
def scripted_server(
    replies: Mapping[str, Sequence[tuple[int, object]]],
) -> Iterator[ScriptedServer]:
    """Serve a :class:`ScriptedServer` on a free loopback port for the duration."""
    script = ScriptedServer({path: list(script) for path, script in replies.items()})

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, answer = script.handle(method, self.path, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._reply("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._reply("POST")

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    script.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def write_csv(path: Path, header: str, *rows: str) -> Path:
    """A CSV file with the given header line and data lines."""
    path.write_text("\n".join((header, *rows)) + "\n", encoding="utf-8")
    return path
