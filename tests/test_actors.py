from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vstream.drivers.actors import LocalRunner, RayRunner, _init_or_stop

CPU = ["CPUExecutionProvider"]


def _listening() -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket on this machine, from /proc/net/tcp{,6}."""
    found = set()
    for name, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state != "0A":  # LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            if family == socket.AF_INET:
                raw = raw[::-1]
            else:
                raw = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
            found.add((socket.inet_ntop(family, raw), int(port, 16)))
    return found


@pytest.fixture(scope="module")
def ray_runner(tmp_path_factory):
    from conftest import write_model

    model = write_model(tmp_path_factory.mktemp("ray") / "dim.onnx", 0.8, 0.05)
    before = _listening()
    runner = RayRunner(model, workers=2, threads=1, providers=CPU)
    runner.new_listeners = _listening() - before
    yield runner
    runner.close()


def test_results_in_submission_order_and_equal_to_local(ray_runner, dimming_model, rng):
    smalls = [rng.integers(0, 256, (20, 30, 3), dtype=np.uint8) for _ in range(7)]
    local = LocalRunner(dimming_model, threads=1, providers=CPU)
    for small in smalls:
        ray_runner.submit(small)
        local.submit(small)
    for _ in smalls:
        np.testing.assert_array_equal(ray_runner.next_result(), local.next_result())
    local.close()


def test_private_ray_listens_on_loopback_only(ray_runner):
    assert ray_runner.new_listeners, "Ray should have opened listening sockets"
    exposed = {(a, p) for a, p in ray_runner.new_listeners if a not in ("127.0.0.1", "::1", "::ffff:127.0.0.1")}
    assert not exposed


def test_a_killed_actor_is_replaced_and_its_frame_redone(ray_runner, rng):
    import ray

    small = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    ray_runner.submit(small)
    ray_runner.next_result()
    victim = ray_runner._actors[0]
    ray.kill(victim)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # ray.kill is asynchronous: wait until it has landed
        try:
            ray.get(victim.ready.remote(), timeout=5)
        except ray.exceptions.RayActorError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the killed actor kept answering")
    for _ in range(4):
        ray_runner.submit(small)
    results = [ray_runner.next_result() for _ in range(4)]
    assert all(np.array_equal(r, results[0]) for r in results)
    assert ray_runner._actors[0] is not victim


class _FakeRay:
    """ray.init as Ray has it during start-up: its SIGTERM handler exits, and a SIGTERM that lands
    while it forks is dropped by the at-fork hook it lands in (here, by a bare ``except``)."""

    def __init__(self) -> None:
        self.started = self.stopped = False

    def init(self, **kwargs) -> None:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        except SystemExit:
            pass  # what Python does with an exception raised in an os.register_at_fork hook
        self.started = True

    def shutdown(self) -> None:
        self.stopped = True


def test_a_sigterm_that_ray_start_up_drops_still_stops_it():
    ray = _FakeRay()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(KeyboardInterrupt):
            _init_or_stop(ray, {})
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert ray.started and ray.stopped  # the Ray it started is shut down again
