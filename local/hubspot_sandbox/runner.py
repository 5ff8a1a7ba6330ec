"""Start the sandbox as a subprocess on a free port and stop it by process id."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .config import WRITE_SCOPE, SandboxConfig
from .control import SandboxControl

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunningSandbox:
    base_url: str
    pid: int
    control: SandboxControl
    config: SandboxConfig
    process: subprocess.Popen = field(repr=False)

    @property
    def token(self) -> str:
        """A configured token that can write (the first one, in configuration order)."""
        for name, spec in self.config.tokens.items():
            if WRITE_SCOPE in spec["scopes"] and not spec["expired"]:
                return name
        raise LookupError("no configured token has the write scope")


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Terminate by process id, then kill if it has not exited within ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    if proc.stdout is not None:
        proc.stdout.close()


def start_sandbox(
    config: SandboxConfig | None = None,
    *,
    startup_timeout: float = 15.0,
    verbose: bool = False,
    new_session: bool = False,
) -> RunningSandbox:
    """Start ``python -m local.hubspot_sandbox`` on a free port; the caller stops it (``stop_process``).
    ``new_session`` keeps it out of the terminal's process group (so a Ctrl-C does not reach it)."""
    config = config or SandboxConfig()
    cmd = [sys.executable, "-m", "local.hubspot_sandbox", "--port", "0", "--config-json", config.to_json()]
    if verbose:
        cmd.append("--verbose")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
        text=True,  # noqa: S603
        cwd=str(PROJECT_ROOT),
        start_new_session=new_session,
    )
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(startup_timeout)
    url = line[0].strip() if line else ""
    if not url.startswith("http://127.0.0.1:"):
        stop_process(proc)
        raise RuntimeError(f"the HubSpot sandbox did not start (exit code {proc.poll()}, first line {url!r})")
    return RunningSandbox(
        base_url=url, pid=proc.pid, control=SandboxControl(url), config=config, process=proc
    )


@contextlib.contextmanager
def run_sandbox(
    config: SandboxConfig | None = None, *, startup_timeout: float = 15.0, verbose: bool = False
) -> Iterator[RunningSandbox]:
    """Run the sandbox on a free port; yield its URL, pid and control client; stop it by process id."""
    sandbox = start_sandbox(config, startup_timeout=startup_timeout, verbose=verbose)
    try:
        yield sandbox
    finally:
        stop_process(sandbox.process)
