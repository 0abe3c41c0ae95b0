"""What the tests and the benchmarks share: the pytest plugin (real broker and store,
isolated settings, tokens, workers), given/when/then for deciders, real child processes,
and the small event vocabularies of the kernel and fault cases.

It depends on the kernel (`shared`), the services and `deploy`; nothing there imports it
(tests/kernel/test_layering.py keeps it so)."""
