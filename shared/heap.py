"""A long-running process's heap, kept out of the garbage collector's full passes once it
has started (issue 14).

What a process builds as it starts (its modules, functions and classes, the event schemas,
the service definitions, the clients) lives as long as the process does, and CPython's full
collection walks all of it each time. In a 30 s load of the flows bench such passes stopped
notifications' consumer process (the risk alerts') six times, 29-107 ms each, billing's
once for 204 ms and measures' once for 100 ms (bench/README.md, session 37). `gc.freeze`
moves what is there into a generation no collection visits; what the process makes
afterwards is collected as before, so a reference cycle made while it runs is still freed
(Python's documentation: gc.freeze)."""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect what starting up left behind, then keep the rest out of later collections.
    Call it once, when the process has started and before its loops run."""
    gc.collect()
    gc.freeze()
