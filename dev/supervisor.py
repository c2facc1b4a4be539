"""Start Airflow's processes and stop every one of them, once: what `make run` stands on.

Each process starts in a session of its own, so a terminal's Ctrl+C reaches only the runner,
which then stops them in order. Signalling their process groups is not enough to find them
all: Airflow's task processes put themselves in groups of their own, and a task whose
supervisor died is re-parented to init. So every process also carries a marker in its
environment, which its children inherit, and the stop ends with a sweep for that marker.

From the first SIGINT or SIGTERM on, further ones are reported and ignored: a second Ctrl+C,
or `make` forwarding the SIGTERM it got too, must not cut the shutdown short and orphan what
it had not stopped yet.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import psutil

MARKER = "TAXI_LOCAL_RUN"
"""Environment variable naming the run that started a process (inherited by its children)."""


class StopRequest:
    """SIGINT and SIGTERM set a flag the runner polls, instead of raising where they land.

    The first signal asks for the stop; every later one only says that the stop is under way
    and how long it may take. Nothing is raised, so no shutdown step is ever interrupted.
    """

    def __init__(self, bound_s: float) -> None:
        self.bound_s = bound_s
        self.signal_name: str | None = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signal_name is None:
            self.signal_name = name
            print(f"\n{name}: stopping Airflow (at most {self.bound_s:.0f} s)", flush=True)
        else:
            print(f"{name}: already stopping, please wait", file=sys.stderr, flush=True)


def listening(host: str, port: int) -> bool:
    """Whether a server listens on (host, port).

    The bind uses SO_REUSEADDR, as Airflow's own server does: the connections of a server that
    just stopped (TIME_WAIT) do not count, a listener does.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


@dataclass
class StopReport:
    """How the stop went: clean when every process ended on SIGTERM within its grace time."""

    killed: list[str] = field(default_factory=list)
    """Processes that outlived their grace time (or were left behind) and were SIGKILLed."""
    busy_ports: list[int] = field(default_factory=list)
    took_s: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.killed and not self.busy_ports


class Supervisor:
    """The processes of one run: started in their own sessions, marked, stopped in order."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.token = secrets.token_hex(8)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        """``argv`` in a session of its own, its output appended to ``logs/<name>.log``."""
        with (self.logs / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                argv,
                env={**env, MARKER: self.token},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def exited(self) -> dict[str, int]:
        """Processes that ended on their own, with their exit status."""
        return {
            name: code for name, proc in self.processes.items() if (code := proc.poll()) is not None
        }

    def stop(
        self, order: Sequence[Sequence[str]], grace_s: float, ports: Sequence[tuple[str, int]]
    ) -> StopReport:
        """SIGTERM each group of names in ``order`` (each process's whole process group), wait
        up to ``grace_s`` for the group, SIGKILL what is left; then sweep for marked processes
        outside those groups, and wait for ``ports`` to be free."""
        report = StopReport()
        began = time.monotonic()
        named = [name for group in order for name in group]
        groups = [*order, [name for name in self.processes if name not in named]]
        for group in groups:
            stopping = {n: p for n in group if (p := self.processes.get(n)) is not None}
            for proc in stopping.values():
                _signal_group(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            for name, proc in stopping.items():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    report.killed.append(name)
                _signal_group(proc.pid, signal.SIGKILL)  # its children, if it left any
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        report.killed += self.sweep()
        report.busy_ports = wait_free(ports, timeout_s=grace_s)
        report.took_s = time.monotonic() - began
        return report

    def sweep(self) -> list[str]:
        """SIGTERM, then SIGKILL, every process still carrying this run's marker; their names."""
        left = marked(self.token)
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        _, alive = psutil.wait_procs(left, timeout=5)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=5)
        return [f"pid {proc.pid} ({_cmdline(proc)})" for proc in left]


def marked(token: str) -> list[psutil.Process]:
    """Every process of this user whose environment carries ``MARKER=token``."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.pid != os.getpid() and proc.environ().get(MARKER) == token:
                found.append(proc)
    return found


def wait_free(ports: Sequence[tuple[str, int]], timeout_s: float) -> list[int]:
    """The ports still listened on after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while busy := [port for host, port in ports if listening(host, port)]:
        if time.monotonic() > deadline:
            return busy
        time.sleep(0.2)
    return []


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())[:80]
    except psutil.Error:
        return "?"
