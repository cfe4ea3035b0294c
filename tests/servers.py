"""Start and stop the real servers the tests talk to (bentoml serve, Prometheus, ...)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server not ready at {url} after {timeout}s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM the process group, wait, SIGKILL if it hangs; return the exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
    return int(process.returncode)


def server_home(bentoml_home: Path, where: Path) -> Path:
    """A BENTOML_HOME of a server's own that shares the models of ``bentoml_home``.

    Every `bentoml serve` empties ``$BENTOML_HOME/prometheus_multiproc_dir`` when it starts,
    so two servers on one home wipe each other's metrics. Each gets its own home, with the
    model store linked in.
    """
    home = where / "bentoml-home"
    home.mkdir(parents=True, exist_ok=True)
    link = home / "models"
    if not link.exists():
        link.symlink_to(bentoml_home / "models", target_is_directory=True)
    return home


@contextlib.contextmanager
def bentoml_server(
    bentoml_home: Path, log: Path, *, env: dict[str, str] | None = None, timeout: float = 60.0
) -> Iterator[str]:
    """Run ``bentoml serve`` from the repository on a free loopback port; yield its URL."""
    port = free_port()
    own = server_home(bentoml_home, log.parent / f"server-{port}")
    full_env = {
        **os.environ,
        "BENTOML_HOME": str(own),
        "BENTOML_DO_NOT_TRACK": "True",
        # Each server gets its own prediction store beside its log, never the repo's data/.
        "INVOICE_FRAUD_STORE_PATH": str(log.with_suffix(".sqlite3")),
    }
    full_env.update(env or {})
    cmd = [
        sys.executable, "-m", "bentoml", "serve", "service:InvoiceFraudService",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd, cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{url}/readyz", process, log, timeout)
        yield url
    finally:
        stop(process)
