"""What one API key's turns taught about timing: how long each tool takes, how soon one event follows another. Pure.

The polling schedule (``schedule.py``) asks two questions of it: when will this open tool call end, and when will
the next event after an event of this kind come. Both are answered with the median and the spread of the
logarithm of a duration (durations are positive and spread by a factor, not by a fixed amount), learned by key: a
tool's name, or the kind of event a gap follows (also after a given tool). A key seen a few times is predicted
from its own samples; a key never seen, from what all keys have in common (the pooled prior); in between, the two
are weighed by how many samples the key has and how much keys differ from one another (an empirical-Bayes normal
model of log durations). Memory is bounded: at most ``max_keys`` keys (the least recently used goes first) and the
last ``max_samples`` samples of each.

One ``Timings`` lives with each ``FlowHuntClient`` (one per API key), so it spans turns and sessions; it is process
memory only (replicas each learn on their own), and a new process starts from the defaults. It also keeps what
polls proved of FlowHunt's clock (``ClockFloor``).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field

MIN_SIGMA = 0.05
"""The narrowest spread predicted (log units: about 5 %), however alike a key's samples are."""
_SHORTEST_S = 0.001
_LONGEST_S = 86_400.0  # a sample outside these bounds is noise (or a hostile duration_ms) and is not learned


@dataclass(frozen=True)
class Spread:
    """A log-normal prediction: the median is ``exp(mu)`` seconds, ``sigma`` the spread in log units."""

    mu: float
    sigma: float

    @property
    def median_s(self) -> float:
        return math.exp(self.mu)


@dataclass
class _Key:
    logs: deque[float]
    total: float = 0.0
    squares: float = 0.0
    followed: int = 0  # gaps only: times an event of this kind was followed by another before a tool's end
    cut: int = 0  # ... and times a tool's end (or the turn's end) came first

    @property
    def count(self) -> int:
        return len(self.logs)

    @property
    def mean(self) -> float:
        return self.total / len(self.logs)

    @property
    def scatter(self) -> float:
        """Sum of squared deviations from the key's mean."""
        return max(self.squares - self.total * self.total / len(self.logs), 0.0) if self.logs else 0.0


@dataclass
class Durations:
    """Learned log-normal durations by key, bounded, with a pooled prior for keys never seen."""

    default: Spread
    """The prediction before anything is learned; ``default_between`` is how far keys are assumed to differ."""
    default_between: float = 1.0
    max_keys: int = 256
    max_samples: int = 32
    prior_weight: float = 2.0
    """How many samples' worth the defaults count for in the pooled figures."""
    _keys: OrderedDict[str, _Key] = field(default_factory=OrderedDict)
    _pooled: tuple[float, float, float] | None = None  # mean of key means, between-key var, within-key var

    def __len__(self) -> int:
        return len(self._keys)

    def samples(self, key: str) -> int:
        found = self._keys.get(key)
        return found.count if found else 0

    def learn(self, key: str, seconds: float) -> None:
        """One observed duration of ``key``."""
        if not _SHORTEST_S <= seconds <= _LONGEST_S:
            return
        entry = self._entry(key)
        value = math.log(seconds)
        if entry.count == self.max_samples:
            old = entry.logs.popleft()
            entry.total -= old
            entry.squares -= old * old
        entry.logs.append(value)
        entry.total += value
        entry.squares += value * value
        self._pooled = None

    def count_follow(self, key: str, followed: bool) -> None:
        """Whether an event of kind ``key`` was followed by another event (True) or a tool's end came first."""
        entry = self._entry(key)
        if followed:
            entry.followed += 1
        else:
            entry.cut += 1
        if entry.followed + entry.cut > 4 * self.max_samples:  # keep it recent: halve the counts
            entry.followed, entry.cut = (entry.followed + 1) // 2, (entry.cut + 1) // 2

    def follow_chance(self, key: str) -> float:
        """How likely an event of kind ``key`` is followed by another before a tool call ends (Laplace's rule)."""
        entry = self._keys.get(key)
        followed, cut = (entry.followed, entry.cut) if entry else (0, 0)
        return (followed + 1.0) / (followed + cut + 2.0)

    def predict(self, key: str | None) -> Spread:
        """The distribution of ``key``'s next duration; None, or a key never seen: the pooled prior."""
        mean_all, between, within = self._pool()
        entry = self._keys.get(key) if key is not None else None
        if entry is None or not entry.count:
            return Spread(mean_all, max(math.sqrt(between + within), MIN_SIGMA))
        self._keys.move_to_end(key)  # type: ignore[arg-type]  # entry is not None, so neither is key
        n = entry.count
        # The key's own spread, shrunk towards the spread keys have within themselves.
        own = (entry.scatter + self.prior_weight * within) / (n - 1 + self.prior_weight)
        # Its mean, weighed against the mean of all keys by precision; what is left unsure widens the prediction.
        precision = n / max(own, 1e-6) + 1 / max(between, 1e-6)
        mu = (entry.mean * n / max(own, 1e-6) + mean_all / max(between, 1e-6)) / precision
        return Spread(mu, max(math.sqrt(own + 1 / precision), MIN_SIGMA))

    def refine(self, prior: Spread, key: str) -> Spread:
        """``prior`` updated with ``key``'s own samples (it counts as ``prior_weight`` samples): a narrower key's
        say on a broader one's prediction, such as a kind of event after one tool on that kind after any."""
        entry = self._keys.get(key)
        if entry is None or not entry.count:
            return prior
        self._keys.move_to_end(key)
        n, weight = entry.count, self.prior_weight
        mu = (weight * prior.mu + entry.total) / (weight + n)
        shift = weight * n / (weight + n) * (entry.mean - prior.mu) ** 2
        return Spread(mu, max(math.sqrt((weight * prior.sigma**2 + entry.scatter + shift) / (weight + n)), MIN_SIGMA))

    def _entry(self, key: str) -> _Key:
        entry = self._keys.get(key)
        if entry is None:
            if len(self._keys) >= self.max_keys:
                self._keys.popitem(last=False)
                self._pooled = None  # the prior pooled the key just forgotten
            entry = self._keys[key] = _Key(deque())
        self._keys.move_to_end(key)
        return entry

    def _pool(self) -> tuple[float, float, float]:
        if self._pooled is None:
            self._pooled = self._compute_pool()
        return self._pooled

    def _compute_pool(self) -> tuple[float, float, float]:
        weight = self.prior_weight
        keys = [entry for entry in self._keys.values() if entry.count]
        means = [entry.mean for entry in keys]
        mean_all = (sum(means) + weight * self.default.mu) / (len(means) + weight)
        spread = sum((m - mean_all) ** 2 for m in means)
        between = (spread + weight * self.default_between**2) / (len(means) + weight)
        scatter = sum(entry.scatter for entry in keys)
        degrees = sum(entry.count - 1 for entry in keys)
        within = (scatter + weight * self.default.sigma**2) / (degrees + weight)
        return mean_all, between, within


CLOCK_MEMORY_MS = 600_000
"""How long a lower bound of FlowHunt's clock skew is trusted for the key's next turns."""


@dataclass
class ClockFloor:
    """The highest lower bound of FlowHunt's clock skew (ms) the key's polls proved lately.

    FlowHunt's clock keeps its offset from ours (both follow a time service), so what one turn's polls proved holds
    for the next turn's first events too: a turn whose answer is its first event seen gets its settle window read
    right. A cursor takes it only within what its own invoke's round trip allows (``Cursor.skew_at_least``).
    """

    bound: int | None = None
    at_ms: int = 0

    def seen(self, bound: int, now_ms: int) -> None:
        if self.bound is None or bound >= self.bound or now_ms - self.at_ms > CLOCK_MEMORY_MS:
            self.bound, self.at_ms = bound, now_ms

    def floor(self, now_ms: int) -> int | None:
        """The bound, while it is recent."""
        return self.bound if self.bound is not None and now_ms - self.at_ms <= CLOCK_MEMORY_MS else None


@dataclass
class Timings:
    """One API key's learned timings: tool durations by tool name, gaps by the kind of event they follow, and
    FlowHunt's clock."""

    tools: Durations = field(default_factory=lambda: Durations(Spread(math.log(3.0), 0.3), default_between=1.2))
    gaps: Durations = field(default_factory=lambda: Durations(Spread(math.log(0.5), 0.5), default_between=1.0))
    clock: ClockFloor = field(default_factory=ClockFloor)
