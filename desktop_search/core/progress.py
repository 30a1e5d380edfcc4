"""Progress arithmetic for the window's status bar: the pace of the last seconds, for an ETA
that follows what the indexer is doing now. No Qt, no heavy imports (the window imports it at start-up)."""

from __future__ import annotations

from collections import deque


class RecentRate:
    """Work per second over the last ``window_s`` seconds, for an ETA that follows the current pace (a run's
    average hides a slow phase: fast skips first, then minutes of encoding)."""

    def __init__(self, window_s: float = 20.0, min_span_s: float = 2.0) -> None:
        self.window_s, self.min_span_s = window_s, min_span_s  # no estimate from less than min_span_s of data
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, t: float, done: float) -> None:
        if self._samples and done < self._samples[-1][1]:
            self._samples.clear()  # a new count started (another phase or job)
        self._samples.append((t, done))
        while len(self._samples) > 2 and t - self._samples[1][0] >= self.window_s:
            self._samples.popleft()

    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 - t0 >= self.min_span_s else 0.0

    def eta_s(self, left: float) -> float | None:
        r = self.rate()
        return left / r if r > 0 else None
