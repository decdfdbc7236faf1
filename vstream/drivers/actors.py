"""Inference workers: Ray actors that each hold one ONNX Runtime session, or one in-process session.

Both runners take the smallest pyramid level of a frame and hand back its interference residual,
in submission order. Actors keep no per-frame state, so any actor can take any frame and a dead
one can be replaced; temporal smoothing happens in the driver after results are back in order.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .. import stopping
from ..errors import VStreamError
from ..stages.infer import InterferenceModel
from ..stagetimes import StageTimes

log = logging.getLogger(__name__)


class Runner(Protocol):
    """Runs the model on small frames; results come back in the order they were submitted."""

    def submit(self, small: np.ndarray) -> None: ...

    def next_result(self) -> np.ndarray: ...

    def close(self) -> None: ...


class LocalRunner:
    """One in-process ORT session on a background thread (no Ray): still images and ``--workers 0``.

    ORT releases the GIL, so decode and encode keep running on the other threads meanwhile.
    The network's time goes to ``times`` (stage ``infer``).
    """

    def __init__(self, model_path: Path, threads: int, providers: list[str], times: StageTimes | None = None) -> None:
        self.model = InterferenceModel(model_path, threads=threads, providers=providers)
        self.times = times or StageTimes()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vstream-infer")
        self._pending: deque[Future] = deque()

    def submit(self, small: np.ndarray) -> None:
        self._pending.append(self._pool.submit(self._residual, small))

    def _residual(self, small: np.ndarray) -> np.ndarray:
        with self.times.timing("infer"):
            return self.model.residual(small)

    def next_result(self) -> np.ndarray:
        return self._pending.popleft().result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Batch:
    actor: int
    smalls: list[np.ndarray]
    ref: object = None  # ray.ObjectRef of the list of residuals
    retried: bool = False


class RayRunner:
    """A pool of ``CleanerActor`` Ray actors, round-robin, results in submission order.

    Frames travel in batches of ``batch`` per Ray call, which spreads Ray's fixed per-call cost
    (about 2.5 ms of CPU per call on the 2-core machine here); each frame is still run on its
    own, so results are identical to the in-process runner's whatever the batch or worker count.

    Args:
        model_path: the ONNX file; its bytes go to the object store once, so actors on other
            nodes need no copy of it.
        workers: number of actors.
        threads: ORT intra-op threads per actor.
        providers: ORT providers for each actor's session.
        address: an existing cluster (``auto`` or ``ray://…``); None starts a private local Ray
            that listens on loopback only, with the dashboard off.
        batch: frames per Ray call.
    """

    def __init__(
        self,
        model_path: Path,
        workers: int,
        threads: int,
        providers: list[str],
        address: str | None = None,
        batch: int = 1,
    ) -> None:
        InterferenceModel(model_path)  # a model that breaks the contract fails here, before Ray starts
        ray, self._started_ray = connect_ray(address, workers)
        self._ray = ray
        self.workers = workers
        self.batch = batch
        self._model_ref = ray.put(Path(model_path).read_bytes())
        self._model_name = str(model_path)
        self._actor_options = {
            "num_cpus": threads if address else 0,  # a private Ray already sized itself for us
            "num_gpus": 1 if "CUDAExecutionProvider" in providers else 0,
        }
        self._threads, self._providers = threads, providers
        self._actors = [self._spawn() for _ in range(workers)]
        self._open: list[np.ndarray] = []  # submitted, not yet sent
        self._sent: deque[_Batch] = deque()
        self._ready: deque[np.ndarray] = deque()  # results of the oldest batch, not yet handed out
        self._next_actor = 0
        # Fail now, not at frame 1000, if the model does not load in an actor.
        try:
            ray.get([a.ready.remote() for a in self._actors])
        except ray.exceptions.RayTaskError as exc:
            self.close()
            raise exc.as_instanceof_cause() from None

    def _spawn(self):
        return _actor_class(self._ray).options(**self._actor_options).remote(
            self._model_ref, self._threads, self._providers, self._model_name
        )

    def submit(self, small: np.ndarray) -> None:
        self._open.append(small)
        if len(self._open) >= self.batch:
            self._send()

    def _send(self) -> None:
        job = _Batch(self._next_actor, self._open)
        self._next_actor = (job.actor + 1) % self.workers
        self._open = []
        job.ref = self._actors[job.actor].residuals.remote(job.smalls)
        self._sent.append(job)

    def next_result(self) -> np.ndarray:
        if not self._ready:
            if not self._sent:
                self._send()
            self._ready.extend(self._fetch(self._sent.popleft()))
        return self._ready.popleft()

    def _fetch(self, job: _Batch) -> list[np.ndarray]:
        while True:
            try:
                return self._ray.get(job.ref)
            except self._ray.exceptions.RayTaskError as exc:
                raise _actor_error(exc) from None
            except self._ray.exceptions.RayActorError as exc:
                if job.retried:
                    raise VStreamError(f"inference worker died twice on the same frames: {exc}") from None
                log.warning("inference actor %d died; starting a replacement", job.actor)
                self._replace(job.actor)
                job.ref = self._actors[job.actor].residuals.remote(job.smalls)
                job.retried = True

    def _replace(self, index: int) -> None:
        try:
            self._ray.get(self._actors[index].ready.remote(), timeout=5)
        except (self._ray.exceptions.RayActorError, self._ray.exceptions.GetTimeoutError):
            self._actors[index] = self._spawn()

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        if self._started_ray:
            self._ray.shutdown()


def _actor_error(exc) -> Exception:
    """What an actor's call raised, as vstream raises it: a domain error as it is (one line),
    anything else as Ray gives it, with its traceback."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, VStreamError) else exc.as_instanceof_cause()


def connect_ray(address: str | None, workers: int):
    """Import Ray and connect: to ``address``, or to a private local instance on loopback.

    Returns the ``ray`` module and whether this call started Ray (and so must shut it down).
    A Ray the caller already initialised is used as it is.
    """
    if address is None:
        # Ray binds its servers to the node IP; with "clusters" off that IP is 127.0.0.1 (see
        # ray._private.services.get_node_ip_address). The variable is read when ray is imported.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        if "ray" not in sys.modules:
            # A new local Ray turns token authentication on, and warns that it did unless the mode
            # is set (ray._private.authentication.authentication_token_setup): set it, to the same
            # mode. Read when ray is imported: set later, its processes would disagree with it.
            os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if address is None and not ray.is_initialized():
        # Ray was imported before us (by the caller): switch the same flag where it now lives.
        constants = getattr(ray._private, "ray_constants", None)
        if getattr(constants, "ENABLE_RAY_CLUSTER", False):
            constants.ENABLE_RAY_CLUSTER = False

    if ray.is_initialized():
        return ray, False
    kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        kwargs["num_cpus"] = max(os.cpu_count() or 1, workers)
    else:
        # Ship this very vstream to the cluster's workers: they need no checkout of their own.
        kwargs["address"] = address
        kwargs["runtime_env"] = {"py_modules": [str(Path(__file__).parent)]}
    _init_or_stop(ray, kwargs)
    stopping.reclaim_signals()
    return ray, True


def _init_or_stop(ray, kwargs: dict) -> None:
    """``ray.init(**kwargs)``, raising KeyboardInterrupt for a SIGINT or SIGTERM that came meanwhile.

    Ray's own SIGTERM handler exits (SystemExit). A signal that lands while Ray forks is handled
    inside an at-fork hook (filelock registers one), where Python drops the exception and the
    start-up would go on as if nothing came: the signal module's wakeup fd still records every
    signal, so the signals are read from it once ``ray.init`` returns (a Ray it started is shut
    down again).
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
        ray.init(**kwargs)
        return
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno())
    try:
        ray.init(**kwargs)
    except SystemExit as exc:
        if exc.code != signal.SIGTERM:
            raise
        raise KeyboardInterrupt from None
    finally:
        signal.set_wakeup_fd(previous)
        try:
            received = reader.recv(256)
        except BlockingIOError:
            received = b""
        reader.close()
        writer.close()
    if signal.SIGINT in received or signal.SIGTERM in received:
        ray.shutdown()
        raise KeyboardInterrupt


_ACTOR_CLASS = None


def _actor_class(ray):
    """The Ray actor class, defined once Ray is imported (vstream imports Ray only when used)."""
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:

        class CleanerActor:
            """Holds one ORT session; :meth:`residuals` takes and returns NumPy arrays only."""

            def __init__(self, model_bytes: bytes, threads: int, providers: list[str], name: str) -> None:
                self.model = InterferenceModel(model_bytes, threads=threads, providers=providers, name=name)

            def ready(self) -> bool:
                return True

            def residuals(self, smalls: list[np.ndarray]) -> list[np.ndarray]:
                return [self.model.residual(small) for small in smalls]

        _ACTOR_CLASS = ray.remote(max_restarts=0)(CleanerActor)
    return _ACTOR_CLASS
