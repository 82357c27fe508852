"""Independent pieces of a build's work on the machine's cores, results in a fixed order.

Each task is pure (it reads shared inputs and returns a new value) and runs its numpy and torch
work on one thread (``build.one_thread``), so its result does not depend on which thread ran it
or when: a build is as deterministic run in parallel as in sequence. numpy and torch release
the GIL inside their kernels, which is where the time goes."""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def in_parallel(tasks: list[Callable[[], T]]) -> list[T]:
    """Run ``tasks`` (at most one per core at once) and return their results in order; the
    first task's exception, in order, is raised. The first task runs on the calling thread;
    the others on daemon threads, so an interrupt (Ctrl-C) ends the build at once."""
    width = min(len(tasks), cores())
    if width <= 1:
        return [task() for task in tasks]
    results: list[Any] = [None] * len(tasks)
    errors: list[BaseException | None] = [None] * len(tasks)
    pending = list(range(1, len(tasks)))
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            results[i] = tasks[i]()
        except BaseException as e:  # noqa: BLE001 - handed to the caller below
            errors[i] = e

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                i = pending.pop(0)
            run(i)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(width - 1)]
    for t in threads:
        t.start()
    run(0)          # the calling thread: a task that starts subprocesses should come first
    worker()
    for t in threads:
        t.join()
    for e in errors:
        if e is not None:
            raise e
    return results
