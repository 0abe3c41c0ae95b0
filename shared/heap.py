"""A long-running process's heap, kept out of the garbage collector's full passes once it
has started (issue 14).

What a process builds as it starts (its modules, functions and classes, the event schemas,
the service definitions, the clients) lives as long as the process does, and CPython's full
collection walks all of it each time: one such pass stopped a consumer or relay process of
the flows bench for about 100 ms, every consumer and relay one to seven times a minute,
and the notifications consumer (the risk alerts' process) lost 0.4 s a minute to them
(bench/README.md, session 37). `gc.freeze` moves what is there into a generation no
collection visits; what the process makes afterwards is collected as before, so a
reference cycle made while it runs is still freed (Python's documentation: gc.freeze)."""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect what starting up left behind, then keep the rest out of later collections.
    Call it once, when the process has started and before its loops run."""
    gc.collect()
    gc.freeze()
