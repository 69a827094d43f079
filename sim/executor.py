"""One way to run many candidate simulations: a process pool here, or Spark tasks on a cluster.

The optimizer scores each candidate plan or policy by simulating it, and an evaluation runs
each controller over its seeds (a :class:`Trial`: a scenario, a named controller with options,
a seed). All of those runs go through an :class:`Executor`, so a search or an evaluation is
written once and runs on a laptop's cores or, with a Spark cluster master in the settings,
across a cluster (:func:`open_executor` picks).

Every simulation runs in a process of its own, forked for it from a warm worker, because
libsumo does not always reproduce a run within one process: repeated in the same process,
resco/cologne1 with the same seed gave different KPIs in about a third of the repeats (with
the fixed and the max-pressure controller; the other RESCO scenarios tried did reproduce),
as SUMO keeps state between runs. A fresh process gave the same KPIs every time, and
comparing candidates on common random numbers depends on that. Forking from a worker that has
already imported the runner, the controllers and libsumo costs milliseconds where a fresh
interpreter spends 2–3 s importing them (a simulation is often 1–10 s). It also confines a
SUMO crash to that one run: the worker stays up and names the trial.
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from core.errors import CitybrainError
from sim.scenarios import Scenario
from sim.sumo_home import import_libsumo

if TYPE_CHECKING:
    from core.settings import Settings

#: How often the Spark driver looks for finished trials to report (seconds).
_PROGRESS_POLL_S = 0.5
#: Options longer than this are cut in a trial's label (a full plan would swamp the message).
_OPTIONS_IN_LABEL = 160


class ExecutorError(CitybrainError, RuntimeError):
    """A trial failed or its process died; the message names the trial and the cause."""


@dataclass(frozen=True)
class Trial:
    """One simulation: a scenario run by a named controller with options on one seed."""

    scenario: Scenario
    controller: str
    seed: int
    options: Mapping[str, Any] = field(default_factory=dict)  # controller options (JSON-able)
    backend: str = "libsumo"  # or "traci" (sim.runner.BACKENDS)
    gui: bool = False
    #: Keep the per-intersection KPIs (an evaluation reports them; a search compares networks).
    intersections: bool = False
    #: Where the run's SUMO outputs are kept, on the host that runs it; None: a temporary folder.
    out_dir: Path | None = None

    def __post_init__(self) -> None:
        # A plain dict copy: any Mapping may be given, but a trial is pickled to its worker
        # (a mappingproxy would not be), and a caller's later change must not alter it.
        object.__setattr__(self, "options", dict(self.options))

    @property
    def label(self) -> str:
        """The trial as an error message names it."""
        text = f"{self.scenario.name} with {self.controller} on seed {self.seed}"
        if self.options:
            options = json.dumps(self.options, sort_keys=True, default=str)
            if len(options) > _OPTIONS_IN_LABEL:
                options = options[: _OPTIONS_IN_LABEL - 1] + "…"
            text += f" (options {options})"
        return text


def _failure(trial: Trial, cause: BaseException) -> ExecutorError:
    return ExecutorError(f"trial {trial.label} failed: {type(cause).__name__}: {cause}")


def _message_for_parent(trial: Trial, error: BaseException) -> str:
    """What a forked run sends back when it fails: the error naming the trial and, when the
    cause is not a user-actionable :class:`CitybrainError` (a bug), its traceback, which the
    process boundary would otherwise drop."""
    failure = error if isinstance(error, ExecutorError) else _failure(trial, error)
    cause = failure.__cause__ or error
    message = str(failure)
    if not isinstance(cause, CitybrainError):
        message += "\n" + "".join(traceback.format_exception(cause)).rstrip()
    return message


def _simulate_in(trial: Trial, out_dir: Path) -> dict[str, Any]:
    # Imported here, not above: the runner imports the controller registry, which loads the
    # installed controller plugins, and the optimizer's own plugins import this module.
    from sim.runner import RunRequest, run

    request = RunRequest(
        trial.scenario,
        trial.controller,
        trial.seed,
        trial.out_dir or out_dir,
        trial.backend,
        trial.gui,
        controller_options=dict(trial.options),
    )
    try:
        result: dict[str, Any] = run(request)
    except Exception as exc:
        raise _failure(trial, exc) from exc
    if not trial.intersections:
        result.pop("intersections", None)
    return result


def simulate(trial: Trial) -> dict[str, Any]:
    """The KPIs of one trial, simulated in this process in a temporary folder that is removed
    afterwards (unless the trial names its ``out_dir``). The per-intersection entry only when
    the trial asks for it: candidates are compared network-wide.

    Raises :class:`ExecutorError` naming the trial. libsumo runs one simulation per process at a
    time and a second one in the same process may not reproduce (see the module's docstring):
    an executor runs each trial in a fresh process; call this directly only where that is fine.
    """
    with tempfile.TemporaryDirectory(prefix="citybrain-trial-") as out:
        return _simulate_in(trial, Path(out))


def _warm() -> None:
    """Import the runner, the controller plugins and libsumo (quietly) before forking, so that
    each forked simulation finds them loaded: that takes 2–3 s, paid once per worker instead of
    once per trial."""
    import sim.runner  # noqa: F401 - imported for the forks' sake
    from sim.controllers import registry
    from sim.plugins import BadPlugin

    with contextlib.suppress(BadPlugin):
        registry()  # a broken plugin then fails each trial, naming it, instead of the worker
    import_libsumo()


def _death(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def _simulate_forked(trial: Trial, scratch: str | None = None) -> dict[str, float]:
    """:func:`simulate` in a child forked from this process, which never runs SUMO itself and
    so stays clean for the next trial, with its outputs in a folder under ``scratch`` (the
    system's temporary folder by default). Raises :class:`ExecutorError` naming the trial when
    the run fails or its process dies (a SUMO segfault, the OOM killer).

    Called in a pool worker or a Spark Python worker: neither runs Python threads, so the fork
    copies no lock held mid-flight (OpenBLAS's idle threads are fork-safe by design)."""
    _warm()
    with tempfile.TemporaryDirectory(prefix="citybrain-trial-", dir=scratch) as out:
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()  # else the child would write this process's buffered output again
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: one simulation, then out, never back into the worker's loop
            try:
                os.close(read_fd)
                os.dup2(2, 1)  # SUMO writes to stdout; a caller's --json output goes there
                try:
                    payload: tuple[bool, Any] = (True, _simulate_in(trial, Path(out)))
                except BaseException as exc:  # noqa: BLE001 - every failure goes back as a message
                    payload = (False, _message_for_parent(trial, exc))
                with os.fdopen(write_fd, "wb") as pipe:
                    pickle.dump(payload, pipe)
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
    try:
        ok, value = pickle.loads(data)
    except (EOFError, pickle.UnpicklingError):
        raise ExecutorError(f"trial {trial.label} failed: its SUMO process died ({_death(status)})") from None
    if not ok:
        raise ExecutorError(value)
    return value


class Executor(ABC):
    """Runs trials in parallel; ``workers`` is how many at a time."""

    workers: int

    @abstractmethod
    def map(
        self, trials: Sequence[Trial], on_done: Callable[[int], None] | None = None
    ) -> list[dict[str, float]]:
        """KPIs of each trial, in the order given; on_done(i) is called as trial i finishes
        (for progress bars). Raises :class:`ExecutorError` naming a trial that failed."""

    @abstractmethod
    def close(self) -> None:
        """Release the workers."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class LocalExecutor(Executor):
    """``workers`` processes on this machine, started on first use and kept across :meth:`map`
    calls: starting one (a fresh interpreter, the imports) takes 2–3 s. Each trial runs
    in a process forked from one of them (see the module's docstring), so libsumo never runs
    in the caller's process, even with one worker.

    The workers are spawned, not forked: the caller may be running threads (a Spark JVM
    gateway, Kafka clients) that a fork would copy mid-flight.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers is not None else os.cpu_count() or 1
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        self._pool: ProcessPoolExecutor | None = None
        # The trials' output folders live under a folder of this executor's, so that what a
        # killed worker could not remove is removed with the pool.
        self._scratch: str | None = None
        # Several searches may share the executor from threads (the regions of a city): one pool.
        self._starting = threading.Lock()

    def _started_pool(self) -> tuple[ProcessPoolExecutor, str]:
        with self._starting:
            if self._pool is None or self._scratch is None:
                self._scratch = tempfile.mkdtemp(prefix="citybrain-trials-")
                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_warm
                )
            return self._pool, self._scratch

    def _discard_pool(self, wait: bool) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def map(
        self, trials: Sequence[Trial], on_done: Callable[[int], None] | None = None
    ) -> list[dict[str, float]]:
        if not trials:
            return []
        pool, scratch = self._started_pool()
        futures = {pool.submit(_simulate_forked, trial, scratch): i for i, trial in enumerate(trials)}
        results: dict[int, dict[str, float]] = {}
        try:
            for future in as_completed(futures):
                index = futures[future]
                results[index] = future.result()
                if on_done is not None:
                    on_done(index)
        except BrokenProcessPool as exc:
            # A worker itself died (killed from outside: a simulation's crash only takes its
            # forked child). Every unfinished trial is lost with the pool; a new one is
            # started on the next map().
            self._discard_pool(wait=False)
            lost = [trial for i, trial in enumerate(trials) if i not in results]
            raise ExecutorError(
                f"a worker process died with {len(lost)} trial(s) unfinished, among them "
                f"{lost[0].label}: {exc}"
            ) from exc
        finally:
            for future in futures:  # after a failure, the trials not yet started are not wanted
                future.cancel()
        return [results[i] for i in range(len(trials))]

    def close(self) -> None:
        self._discard_pool(wait=True)


class _FinishedTrials:
    """A Spark accumulator of the indices of finished trials (an ``AccumulatorParam``: Spark
    calls only ``zero`` and ``addInPlace``). The driver sees it grow as tasks end, which is how
    it reports progress during a job that returns its results only at the end."""

    def zero(self, value: frozenset[int]) -> frozenset[int]:
        return frozenset()

    def addInPlace(self, first: frozenset[int], second: frozenset[int]) -> frozenset[int]:  # noqa: N802
        return first | second


def _spark_task(finished: Any, item: tuple[int, Trial]) -> tuple[int, dict[str, float] | None, str | None]:
    """One trial in a Spark Python worker. A failure comes back as a value, not an exception:
    on a cluster Spark would retry the task (a simulation fails the same way again), and it
    wraps a task's exception in pages of JVM stack."""
    index, trial = item
    try:
        result = _simulate_forked(trial)
    except ExecutorError as exc:
        return index, None, str(exc)
    finished.add(frozenset({index}))
    return index, result, None


class SparkExecutor(Executor):
    """One Spark task per trial, on the process's Spark session (:func:`core.spark.spark_session`,
    which also points Spark's Python workers at this interpreter). On a cluster, every executor
    host needs this project installed in the same Python environment.

    Each task forks its simulation from the Spark Python worker, as the local executor does, so
    reused Spark workers give reproducible runs and a SUMO crash does not cost the worker.
    """

    def __init__(self, settings: Settings) -> None:
        from core.spark import spark_session

        self._context = spark_session(settings).sparkContext
        self.workers = self._context.defaultParallelism

    def map(
        self, trials: Sequence[Trial], on_done: Callable[[int], None] | None = None
    ) -> list[dict[str, float]]:
        if not trials:
            return []  # Spark refuses zero slices
        finished = self._context.accumulator(frozenset(), _FinishedTrials())
        rdd = self._context.parallelize(list(enumerate(trials)), numSlices=len(trials))
        job = rdd.map(functools.partial(_spark_task, finished))
        rows = self._collect(job.collect, finished, on_done)
        failures = sorted((index, error) for index, _, error in rows if error is not None)
        if failures:
            raise ExecutorError(failures[0][1])
        by_index = {index: result for index, result, _ in rows}
        return [by_index[index] for index in range(len(trials))]

    @staticmethod
    def _collect(
        collect: Callable[[], list[Any]], finished: Any, on_done: Callable[[int], None] | None
    ) -> list[Any]:
        """Run the job, calling ``on_done`` from this thread as trials finish (the job runs in
        another one, and the accumulator shows which trials are done)."""
        if on_done is None:
            return collect()
        reported: set[int] = set()
        with ThreadPoolExecutor(1, thread_name_prefix="citybrain-spark-trials") as thread:
            job = thread.submit(collect)
            while True:
                ended = job.done()  # read first: a trial finishing after it is reported next round
                for index in sorted(finished.value - reported):
                    reported.add(index)
                    on_done(index)
                if ended:
                    return job.result()
                wait([job], timeout=_PROGRESS_POLL_S)

    def close(self) -> None:
        """Nothing to release: the Spark session is the process's shared one (the lake jobs use
        it too) and stays up."""


def open_executor(settings: Settings, workers: int | None = None) -> Executor:
    """The executor the settings ask for (``optimizer_executor``): ``local`` is a process pool of
    ``workers`` (else ``optimizer_workers``, else one per core); ``spark`` runs trials as Spark
    tasks, as many at a time as the cluster's default parallelism (``workers`` does not apply);
    ``auto`` is Spark when ``spark_master`` names a cluster, else local.
    """
    kind = settings.optimizer_executor
    if kind == "auto":
        kind = "local" if settings.spark_master.startswith("local") else "spark"
    if kind == "spark":
        return SparkExecutor(settings)
    return LocalExecutor(workers or settings.optimizer_workers or os.cpu_count())
