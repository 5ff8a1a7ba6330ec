"""Virtual time shared by simulated actors, each a greenlet, in one deterministic order.

The real drain code calls ``payments_drain.core.clock.sleep`` wherever time passes (its backoffs, and
every simulated outside call, which sleeps for its latency). Installed as that clock, the
scheduler turns each sleep into a switch back to its loop, which wakes the actor whose time comes
first (ties by the order they were scheduled). An invocation that is still running at its
deadline, or that the simulation kills, is woken with ``Killed`` thrown in: it unwinds, and any
call it tries on the way out meets ``Killed`` again, so nothing it does after its death reaches
an outside system, as with a real process. Greenlets, not threads: no switch happens anywhere but
at a sleep, so a seed replays exactly (the greenlet package; Python's own threads would interleave
at will).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from greenlet import greenlet

from simulation.clock import START, VirtualClock


class Killed(BaseException):  # noqa: N818 - not an error of the code under test: its process is gone
    """Thrown into an actor whose invocation timed out or was killed (SIGKILL, out of memory)."""


@dataclass(eq=False)
class Actor:
    name: str
    run: Callable[[], None]
    deadline: float | None = None  # killed when it would run past this (a Lambda timeout)
    dead: bool = False
    done: bool = False
    glet: greenlet | None = field(default=None, repr=False)
    error: BaseException | None = None


class Scheduler(VirtualClock):
    def __init__(self, start: float = START) -> None:
        super().__init__(start)
        self.queue: list[tuple[float, int, object]] = []
        self.seq = itertools.count()
        self.main = greenlet.getcurrent()
        self.current: Actor | None = None
        self.switches = 0

    # -- the clock the drain reads (payments_drain.core.clock.install): VirtualClock's, but sleep ----
    def sleep(self, seconds: float) -> None:
        actor = self.current
        if actor is None:  # outside any actor (setting up): time simply moves
            self.now += max(0.0, seconds)
            return
        if actor.dead:
            raise Killed(actor.name)
        wake = self.now + max(0.0, seconds)
        if actor.deadline is not None and wake > actor.deadline:
            self._push(actor.deadline, ("kill", actor))
        else:
            self._push(wake, ("wake", actor))
        self.current = None
        self.main.switch()
        if actor.dead:
            raise Killed(actor.name)

    # -- scheduling ---------------------------------------------------------------------------
    def spawn(self, at: float, name: str, run: Callable[[], None], deadline: float | None = None) -> Actor:
        actor = Actor(name, run, deadline)
        self._push(at, ("start", actor))
        return actor

    def call_at(self, at: float, callback: Callable[[], None]) -> None:
        """``callback`` runs in the loop at ``at``; it must not sleep (spawn an actor for that)."""
        self._push(at, ("call", callback))

    def kill(self, actor: Actor) -> None:
        """SIGKILL now: the actor never runs another line that reaches an outside system."""
        if not actor.done and not actor.dead:
            actor.dead = True
            self._push(self.now, ("resume-dead", actor))

    def run(self, until: float) -> None:
        while self.queue and self.queue[0][0] <= until:
            at, _, (what, item) = heapq.heappop(self.queue)
            self.now = max(self.now, at)
            if what == "call":
                item()
                continue
            actor: Actor = item
            if actor.done:
                continue
            if what == "kill":
                actor.dead = True
            if what == "start":
                if actor.dead:
                    actor.done = True
                    continue
                actor.glet = greenlet(self._body(actor), parent=self.main)
            self._resume(actor)
        self.now = max(self.now, until)

    def _body(self, actor: Actor) -> Callable[[], None]:
        def body() -> None:
            try:
                actor.run()
            except Killed:
                pass
            except BaseException as error:  # noqa: BLE001 - reported by the world as a violation
                actor.error = error
            finally:
                actor.done = True
                self.current = None

        return body

    def _resume(self, actor: Actor) -> None:
        if actor.glet is None or actor.glet.dead:
            actor.done = True
            return
        self.current = actor
        self.switches += 1
        actor.glet.switch()
        self.current = None

    def _push(self, at: float, event: tuple[str, object]) -> None:
        heapq.heappush(self.queue, (at, next(self.seq), event))
