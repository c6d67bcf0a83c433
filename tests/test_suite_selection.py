"""The suite's own selections name modules that exist (a moved module would silently
drop out of the SQLite pass or out of its xdist group)."""

from .conftest import EMBEDDED_MODULES, SPREAD_MODULES, TESTS


def test_every_module_named_for_sqlite_or_spreading_exists():
    missing = sorted(
        name for name in EMBEDDED_MODULES | SPREAD_MODULES if not (TESTS / name).is_file()
    )
    assert missing == []
