"""Running independent tasks here, on a concurrent.futures.Executor or on a
dask.distributed.Client (private; the ``executor=`` of monte_carlo,
descent_ensemble and sweep).

The callers cut their work so that the answer does not depend on who runs a
task or when it finishes: results come back as a list in task order, and the
caller combines them in that order. Dask is never imported unless a Client
was passed (so it stays an optional extra).
"""

import concurrent.futures

from stefast import _validation as val

__all__ = ["TaskError", "TASK_WORK", "run_tasks", "task_threads"]

#: the least work per task, in units of about a nanosecond on one core
#: (Monte Carlo: normal-equivalents; ensembles: multiply-adds). A Dask task
#: costs about a millisecond of scheduling (docs/user_guide/distributed.rst),
#: so a task of ~1 s keeps that overhead near 0.1%.
TASK_WORK = 1 << 30

#: the most tasks one call makes: beyond this the tasks grow instead, so the
#: scheduler and the client's in-order combination stay a small part of a run
MAX_TASKS = 1 << 14


class TaskError(RuntimeError):
    """A task raised; ``task`` says which (a sample range, runs, a grid point).

    Parameters
    ----------
    task : str
        The task, as the message names it (``"grid point theta=1.0"``).
    exc : BaseException
        The task's own exception, also the ``__cause__``.
    """

    def __init__(self, task, exc):
        super().__init__(f"{task}: {type(exc).__name__}: {exc}")
        self.task = task


def task_threads(executor, threads):
    """OpenMP threads inside one task: the caller's ``threads`` here (None:
    every core), 1 per task on an executor unless given (its workers are the
    parallelism; every core per task would oversubscribe the machine)."""
    if executor is not None and threads is None:
        return 1
    return val.check_threads(threads)


def run_tasks(executor, fn, args, labels, on_result=None):
    """[fn(*a) for a in args], run by ``executor`` (None: here, in order).

    ``labels[i]`` names task i in the TaskError raised when it fails (the
    other tasks are then cancelled). ``on_result(i, result)`` is called as
    each task finishes, in completion order (progress, stores); the return
    value is in task order whatever the completion order.
    """
    results = [None] * len(args)
    if executor is None:
        for i, a in enumerate(args):
            try:
                results[i] = fn(*a)
            except Exception as exc:
                raise TaskError(labels[i], exc) from exc
            if on_result is not None:
                on_result(i, results[i])
        return results
    dask = val.is_dask_client(executor)
    if dask:
        import distributed
        # pure=False: tasks with equal arguments are still distinct tasks
        futures = [executor.submit(fn, *a, pure=False) for a in args]
        completed = distributed.as_completed(futures)
    else:
        futures = [executor.submit(fn, *a) for a in args]
        completed = concurrent.futures.as_completed(futures)
    index = {id(f): i for i, f in enumerate(futures)}
    try:
        for f in completed:
            i = index[id(f)]
            try:
                results[i] = f.result()
            except Exception as exc:
                raise TaskError(labels[i], exc) from exc
            if on_result is not None:
                on_result(i, results[i])
    except BaseException:
        # a failed task or Ctrl-C: the rest would only keep the workers busy
        if dask:
            executor.cancel(futures)
        else:
            for f in futures:
                f.cancel()
        raise
    return results
