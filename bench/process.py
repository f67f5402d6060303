"""A step in a fresh process of its own, as Dagster's multiprocess executor runs an asset:
its result, time and peak resident memory are its own, not what earlier steps left behind
in the benchmark's process."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def own_peak_rss_mb() -> float:
    """This process's peak resident memory since it started its program (VmHWM): not
    ``ru_maxrss``, which a spawned process inherits from the parent it was forked from."""
    with open("/proc/self/status") as fh:
        kb = next(line.split()[1] for line in fh if line.startswith("VmHWM:"))
    return int(kb) / 1024


def _measured(step: Callable[..., Any], args: tuple) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = step(*args)
    return {
        "result": result,
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "peak_rss_mb": own_peak_rss_mb(),
    }


def in_fresh_process(step: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """``step(*args)`` (a module-level function, its arguments and result picklable) in a
    spawned process: its result, wall and CPU seconds and peak RSS in MB."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(_measured, step, args).result()
