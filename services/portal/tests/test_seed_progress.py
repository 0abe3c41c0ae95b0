"""The seed's step record against the real store: a step done once is not done again, even
when its name has dots (a dotted name once nested inside the record and every client was
registered twice)."""

from deploy.local.seed import Progress
from shared.mongo import client


def test_a_step_runs_once_whatever_its_name(settings):
    progress = Progress(client(settings.mongo_uri)[settings.database("portal")])
    calls = []
    for _ in range(3):
        assert progress.once("emma.client", lambda: calls.append(1) or "c-1") == "c-1"
    assert calls == [1]
    assert not progress.done()
    progress.finish()
    assert progress.done()
