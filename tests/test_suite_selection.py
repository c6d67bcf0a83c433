"""The suite's own selections (tests/conftest.py) name modules that exist, and every
module that starts a Celery worker is in the Redis unit of the parallel run."""

import re

from .conftest import EMBEDDED_MODULES, REDIS_MODULES, SPREAD_MODULES, TESTS


def test_every_module_named_in_a_selection_exists():
    named = EMBEDDED_MODULES | REDIS_MODULES | SPREAD_MODULES
    assert sorted(name for name in named if not (TESTS / name).is_file()) == []


def test_every_module_with_worker_tests_runs_in_the_redis_unit():
    with_workers = {
        path.relative_to(TESTS).as_posix()
        for path in TESTS.rglob("test_*.py")
        if re.search(r"\bpytest\.mark\.worker\b", path.read_text())
    }
    assert with_workers
    assert sorted(with_workers - REDIS_MODULES) == []
