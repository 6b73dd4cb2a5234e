"""When a `nodegen` process lets Python's cyclic garbage collector run.

A run builds a few hundred thousand objects that live until it ends (the modules it imports, the
manifests, the fleet view) and makes little cyclic garbage until it renders. Left alone, the
collector examines each of those objects in its young generations while they are built, and the
interpreter's exit collection examines every one of them again, to free nothing that reference
counting would not: about a sixth of a cold `validate`, `check --all` or `render --all` of the
shipped fleet (docs/performance.md).

So the process (nodegen.__main__) pauses the collector before anything is imported; once the view
is built (pipeline.Fleet.resolved), what exists is frozen out of its sight and the collector runs
again, for rendering's short-lived objects (Jinja's macros make reference cycles); and at the end
everything left is frozen, so the exit collection has nothing to examine. A command that never
builds the view (validate, nodes, import, lint-migrations, ...) runs with the collector paused: it
reads its input once and leaves a few hundred unreachable objects in cycles, which the end of the
process frees.

Nothing here touches a collector someone else configured: main() called in-process (the tests, a
program embedding nodegen) keeps whatever state the caller chose.
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """No cyclic collection while the run's long-lived objects are built (the process's first call)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """The long-lived objects are built: freeze them out of the collector's sight, and collect from here on.

    Does nothing unless pause() disabled the collector (and only once).
    """
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def finish() -> None:
    """The process is about to exit: spare the interpreter's last collection of every object still alive.

    Frozen objects are still freed by reference counting; only cycles among them stay until the
    process is gone, as they would once the exit's own collection had run.
    """
    gc.freeze()
