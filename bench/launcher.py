"""Spawn one command, wait for it, and write its wall time and rusage as JSON.

Run as ``python -I -S bench/launcher.py RESULT LOG COMMAND...``, deliberately tiny. Linux
counts the memory of the process a child was forked from into the child's ``ru_maxrss`` (exec
records the old address space's peak), so forking a measured child straight from the harness,
with pyarrow and psycopg loaded, would add the harness's ~170 MB to every method. Forked from
this launcher, a child starts from ~9 MB, below any method measured here.
"""

import json
import os
import sys
import time


def main(result: str, log: str, argv: list[str]) -> int:
    output = (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    started = time.perf_counter()
    pid = os.posix_spawnp(
        argv[0], argv, os.environ, file_actions=[output, (os.POSIX_SPAWN_DUP2, 1, 2)]
    )
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    with open(result, "w") as out:
        json.dump(
            {
                "wall_s": wall,
                "maxrss_kb": usage.ru_maxrss,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "returncode": os.waitstatus_to_exitcode(status),
            },
            out,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
