"""deploy/gunicorn.conf.py's worker hook: the loaded app's objects leave the collector's care."""

from __future__ import annotations

import gc
import os
import runpy
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py"


def _collected_ids() -> set[int]:
    return {id(o) for generation in (0, 1, 2) for o in gc.get_objects(generation)}


def test_a_worker_freezes_what_it_loaded_so_full_collections_skip_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The settings file sets defaults in the environment (the metrics directory): a copy takes
    # them, so that the tests after this one see the environment they had.
    monkeypatch.setattr(os, "environ", dict(os.environ))
    conf = runpy.run_path(str(CONF))
    loaded = [[i] for i in range(1000)]  # lists are tracked by the collector
    assert {id(o) for o in loaded} <= _collected_ids()
    try:
        conf["post_worker_init"](None)
        assert gc.get_freeze_count() >= len(loaded)
        assert not {id(o) for o in loaded} & _collected_ids()
        later = [0]
        assert id(later) in _collected_ids()  # what the worker makes afterwards is collected
    finally:
        gc.unfreeze()
