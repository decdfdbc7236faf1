"""The layer that stays put: reflections, dust and stains on glass that moves with the camera.

In a dashcam, a dome camera or a camera behind a window, the glass moves with the camera, so
what it adds stays at the same pixels while the scene moves behind it:
``I_t(x) = B_t(x) + L(x)``. Two frames ``gap`` apart and the scene's optical flow ``f`` between
them (``B_t(x) = B_{t-gap}(x + f(x))``) give one linear equation per pixel in the layer alone::

    I_t(x) - I_{t-gap}(x + f(x)) = L(x) - L(x + f(x))

:class:`StationaryLayer` accumulates these equations over the stream, as least-squares normal
equations on a coarse grid, and solves them every few frames with light smoothness and
shrinkage priors; the layer is additive, so its estimate is never negative.

What the equations can and cannot see:

- where the scene does not move (a stop, the sky at infinity, the hood), ``f = 0`` and the
  equation is ``0 = 0``: no evidence, so the estimate there is held, never folded from the
  scene. Evidence is forgotten only as new evidence arrives, so a stopped car keeps its estimate;
- opaque static content (pillars, a burnt-in timestamp) never moves either: it is left alone;
- a layer constant along the flow's lines cannot be told from the scene: the priors pull that
  part to zero, so the estimate errs towards removing less.

Pixels where the equation does not hold (moving objects, occlusions, flow errors) are down-weighted
by their residual against the current estimate (one step of iteratively reweighted least squares,
online). Flow errors and the scene's own changes still leak into the solution (on clean highway
footage, as the scene's structure smeared along the flow), so the estimate is removed only where
it explains a share of what changed between the frames: ``explained`` or more in full, less in
proportion, none where it explains nothing. The stream restarts at scene cuts. The estimator is
causal; a file's pipeline asks for a frame's layer some frames later, so it has seen those too.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as sparse_linalg

from . import smooth
from .schedule import has_flow, pixel_grid


@dataclass(frozen=True)
class StationaryConfig:
    """``enabled``: estimate and remove the stationary layer. ``grid``: longest side of the grid it
    is solved on (the layer is smooth, and cost grows with its square). ``gap``: frames between the
    two frames of each equation. ``memory``: frames of full-frame evidence after which old
    evidence has half its weight. ``smoothness``, ``shrink``: weights of the priors (relative to
    one frame of full-frame evidence). ``robust``: residual (0..1) at which an equation's weight
    halves. ``explained``: share of the frames' differences around a pixel that the estimate must
    explain for it to be removed there in full (in proportion below). ``solve_every``: frames
    between solves (the estimate is held in between).
    ``look_ahead``: frames a file's frame waits for (held in memory) so that its estimate has seen
    them; live feeds do not wait (their latency is unchanged)."""

    enabled: bool = False
    grid: int = 80
    gap: int = 12
    memory: float = 120.0
    smoothness: float = 0.001
    shrink: float = 0.001
    robust: float = 0.04
    explained: float = 0.5
    solve_every: int = 8
    look_ahead: int = 48

    def __post_init__(self) -> None:
        for name, least in (("grid", 8), ("gap", 1), ("solve_every", 1), ("look_ahead", 1)):
            if getattr(self, name) < least:
                raise ValueError(f"stationary.{name} must be at least {least}, got {getattr(self, name)}")
        for name in ("memory", "smoothness", "shrink", "robust"):
            if not getattr(self, name) > 0:
                raise ValueError(f"stationary.{name} must be above 0, got {getattr(self, name)}")
        if not 0 < self.explained <= 1:
            raise ValueError(f"stationary.explained must be in (0, 1], got {self.explained}")


MIN_MOTION = 0.5  # grid pixels of flow below which a pixel gives (almost) no evidence
TRUST_SIGMA = 3.0  # grid pixels: the neighbourhood over which an estimate's explained share is judged


class StationaryLayer:
    """Stateful estimator: :meth:`observe` every frame's small level in display order, and ask
    :meth:`layer` for what to remove from a frame observed earlier (files look ahead that way;
    live feeds ask at once).

    ``scene_cut`` is the smoother's (:class:`~vstream.stages.smooth.SmoothingConfig`): the
    estimate restarts where the smoother does, and each stretch between restarts is an epoch:
    a frame gets its own epoch's estimate, the last one made if the epoch has ended. ``cuts``
    counts the restarts.
    """

    def __init__(self, config: StationaryConfig, scene_cut: float) -> None:
        self.config = config
        self.scene_cut = scene_cut
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._grid_shape: tuple[int, int] | None = None
        self._pixels: np.ndarray | None = None  # pixel_grid of the grid shape
        self._priors: sparse.csr_matrix | None = None
        self._ended: dict[int, np.ndarray | None] = {}  # the last estimate of each ended epoch
        self.epoch = 0
        self.cuts = 0
        self._start()

    def reset(self) -> None:
        """Start again (a gap in a live input): later frames do not use what came before."""
        self._solve()
        self._ended[self.epoch] = self._removed
        self.epoch += 1
        self._start()

    def _start(self) -> None:
        self._past: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=self.config.gap)  # (luma, colours)
        self._steps: deque[np.ndarray] = deque(maxlen=self.config.gap)  # each frame's flow to the one before
        self._normal: sparse.csr_matrix | None = None  # Σ Mᵀ W M, up to the last fold
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # its entries since then
        self._pending_fade = 1.0  # the fade since then
        self._rhs: np.ndarray | None = None  # Σ Mᵀ W D, one column per channel
        self._change: np.ndarray | None = None  # per pixel: Σ w |D|²
        self._unexplained: np.ndarray | None = None  # per pixel: Σ w |D - M L|², L the estimate of the time
        self._layer: np.ndarray | None = None  # (n, 3) on the grid: the solution
        self._removed: np.ndarray | None = None  # (gh, gw, 3): the solution where it explains the change
        self._since_solve = 0

    def observe(self, small: np.ndarray) -> int:
        """Take in ``small``, a frame's ``(h, w, 3)`` uint8 RGB small level; returns its epoch."""
        luma, colours = self._prepared(small)
        if self._past:
            last = self._past[-1][0]
            if last.shape != luma.shape:  # a new size: nothing before carries over
                self.reset()
            elif smooth.is_cut(smooth.change(luma, last), self.scene_cut):
                self.cuts += 1
                self.reset()
        if luma.shape != self._grid_shape:
            self._grid_shape, self._priors, self._pixels = luma.shape, None, pixel_grid(luma.shape)
        if not has_flow(luma.shape):  # too small to follow: no evidence, no layer
            return self.epoch
        if self._past:
            self._steps.append(self._dis.calc(luma, self._past[-1][0], None))
        if len(self._past) == self.config.gap:
            self._add_equations(colours, self._past[0][1], self._chained_flow())
            self._since_solve += 1
            if self._since_solve >= self.config.solve_every:
                self._solve()
        self._past.append((luma, colours))
        return self.epoch

    def layer(self, epoch: int, shape: tuple[int, int]) -> np.ndarray | None:
        """What to remove from a frame of ``epoch`` whose small level is ``shape`` (h, w):
        ``(h, w, 3)`` float32 in [0, 1], or None while there is no evidence. Epochs before
        ``epoch`` are forgotten: ask in display order."""
        for ended in [e for e in self._ended if e < epoch]:
            del self._ended[ended]
        grid = self._ended.get(epoch) if epoch < self.epoch else self._removed
        return None if grid is None else cv2.resize(grid, shape[::-1], interpolation=cv2.INTER_LINEAR)

    def _prepared(self, small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The grid's luma (uint8, for the flow and cut checks) and RGB (float32 0..1)."""
        h, w = small.shape[:2]
        scale = min(1.0, self.config.grid / max(h, w))
        shape = (max(2, round(h * scale)), max(2, round(w * scale)))
        colours = cv2.resize(small, shape[::-1], interpolation=cv2.INTER_AREA)
        return smooth.luma(colours), colours.astype(np.float32) * np.float32(1.0 / 255.0)

    def _chained_flow(self) -> np.ndarray:
        """The flow from this frame to the one ``gap`` before, chained from frame-to-frame flows:
        DIS follows small steps well and a large jump poorly."""
        steps = reversed(self._steps)
        flow = next(steps).copy()
        for step in steps:
            flow += cv2.remap(step, self._pixels + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return flow

    def _add_equations(self, colours: np.ndarray, old_colours: np.ndarray, flow: np.ndarray) -> None:
        """Add the equations of this frame against the one ``gap`` before, ``flow`` from this to that
        (``colours(x) ≈ old_colours(x + flow(x))`` for the scene). Equation ``r`` reads
        ``L[r] - L[c] = D[r]``: ``c`` the grid pixel nearest ``r + flow(r)`` (the layer is smooth
        on the grid), ``D`` the frames' difference, sampled bilinearly."""
        gh, gw = colours.shape[:2]
        n = gh * gw
        where = self._pixels + flow
        x, y = where[..., 0], where[..., 1]
        inside = (x >= 0) & (x <= gw - 1) & (y >= 0) & (y <= gh - 1)
        motion = (np.minimum(np.hypot(flow[..., 0], flow[..., 1]) * (1.0 / MIN_MOTION), 1.0) * inside).reshape(-1)
        difference = (colours - cv2.remap(old_colours, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)).reshape(n, 3)
        # Down-weight the equations the current estimate (none yet: no layer) does not explain.
        moved = _nearest(x, y, gw, gh)
        predicted = 0.0 if self._layer is None else self._layer - self._layer[moved]
        misfit = np.abs(predicted - difference).mean(axis=1)
        weight = motion / (1.0 + (misfit / self.config.robust) ** 2)
        evidence = float(weight.mean())
        if evidence <= 0.0:
            return
        # Old evidence fades only as new evidence comes in: nothing is forgotten while the scene stands still.
        fade = 0.5 ** (evidence / self.config.memory)
        weighted = weight[:, None] * difference
        rhs = weighted - np.stack([np.bincount(moved, weighted[:, c], minlength=n) for c in range(3)], axis=1)  # Mᵀ W D
        change = motion * (difference**2).sum(axis=1)
        unexplained = motion * ((predicted - difference) ** 2).sum(axis=1)
        if self._rhs is None:
            self._rhs, self._change, self._unexplained = rhs, change, unexplained
        else:
            self._rhs = self._rhs * fade + rhs
            self._change = self._change * fade + change
            self._unexplained = self._unexplained * fade + unexplained
        self._pending_fade *= fade
        self._pending.append(_normal_entries(moved, weight, self._pending_fade))

    def _fold(self) -> None:
        """Sum the equations added since the last fold into the normal matrix (one sparse
        conversion for all of them, rather than a sparse sum per frame)."""
        if not self._pending:
            return
        n = self._grid_shape[0] * self._grid_shape[1]
        rows, cols, vals = (np.concatenate(parts) for parts in zip(*self._pending))
        added = sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))
        # Entries were stored divided by the fade up to their frame: times the fade up to now is their weight now.
        total = added if self._normal is None else self._normal + added
        self._normal = total * self._pending_fade
        self._pending, self._pending_fade = [], 1.0

    def _solve(self) -> None:
        self._since_solve = 0
        self._fold()
        if self._normal is None:
            return
        if self._priors is None:
            self._priors = _priors(self._grid_shape, self.config.smoothness, self.config.shrink)
        # Scaled by the evidence of a stream that has moved all along: while evidence is still
        # short of that, the priors weigh more and the estimate stays nearer zero.
        full = 1.0 / (1.0 - 0.5 ** (1.0 / self.config.memory))
        system = self._normal * (1.0 / full) + self._priors
        rhs = self._rhs * (1.0 / full)
        start = self._layer if self._layer is not None else np.zeros_like(rhs)
        solved = np.stack([sparse_linalg.cg(system, rhs[:, c], x0=start[:, c], rtol=1e-3, maxiter=30)[0]
                           for c in range(3)], axis=1)
        self._layer = np.maximum(solved, 0.0)
        self._removed = self._on_grid(self._layer) * self._trust()[..., None]

    def _on_grid(self, values: np.ndarray) -> np.ndarray:
        """Per-pixel ``(n, ...)`` values as a float32 ``(gh, gw, ...)`` image."""
        return values.reshape(*self._grid_shape, *values.shape[1:]).astype(np.float32)

    def _trust(self) -> np.ndarray:
        """Per grid pixel, 0..1: the share of the frames' differences around it that the estimate
        explains, over ``explained``."""
        change = cv2.GaussianBlur(self._on_grid(self._change), (0, 0), TRUST_SIGMA)
        unexplained = cv2.GaussianBlur(self._on_grid(self._unexplained), (0, 0), TRUST_SIGMA)
        share = 1.0 - unexplained / np.maximum(change, 1e-12)
        return np.clip(share * (1.0 / self.config.explained), 0.0, 1.0)


def _nearest(x: np.ndarray, y: np.ndarray, width: int, height: int) -> np.ndarray:
    """Flat index of the grid pixel nearest each ``(x, y)``, clamped to the grid."""
    column = np.clip(np.rint(x), 0, width - 1).astype(np.int64)
    row = np.clip(np.rint(y), 0, height - 1).astype(np.int64)
    return (row * width + column).reshape(-1)


def _normal_entries(moved: np.ndarray, weight: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and values of ``Mᵀ W M / scale`` (summed where they repeat): equation ``r``
    (``L[r] - L[c] = D[r]``, ``c = moved[r]``) adds ``w_r`` at ``(r, r)`` and ``(c, c)`` and
    ``-w_r`` at ``(r, c)`` and ``(c, r)``."""
    r = np.flatnonzero(weight > 1e-6)
    c = moved[r]
    w = weight[r] / scale
    return np.concatenate([r, c, r, c]), np.concatenate([r, c, c, r]), np.concatenate([w, w, -w, -w])


def _priors(shape: tuple[int, int], smoothness: float, shrink: float) -> sparse.csr_matrix:
    """``smoothness`` times the grid's gradient energy plus ``shrink`` times the layer's energy."""
    h, w = shape

    def difference(length: int) -> sparse.csr_matrix:
        return sparse.diags([-np.ones(length - 1), np.ones(length - 1)], [0, 1], shape=(length - 1, length))

    dx = sparse.kron(sparse.identity(h), difference(w))
    dy = sparse.kron(difference(h), sparse.identity(w))
    return (smoothness * (dx.T @ dx + dy.T @ dy) + shrink * sparse.identity(h * w)).tocsr()
