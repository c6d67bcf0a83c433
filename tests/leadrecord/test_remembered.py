"""A process's remembered values: read once per period, never None, forgotten on demand."""

from leadrecord.remembered import Remembered


def _counting(value):
    calls = []

    def read():
        calls.append(1)
        return value

    return read, calls


def test_a_value_is_read_once_while_it_is_kept_and_again_once_forgotten():
    remembered: Remembered[str, str] = Remembered(3600)
    read, calls = _counting("form")
    assert remembered.get("a", read) == "form"
    assert remembered.get("a", read) == "form"
    assert len(calls) == 1
    remembered.forget("a")
    assert remembered.get("a", read) == "form"
    assert len(calls) == 2
    remembered.forget()
    remembered.get("a", read)
    assert len(calls) == 3


def test_keys_are_kept_apart_and_forgetting_one_keeps_the_other():
    remembered: Remembered[str, str] = Remembered(3600)
    read_a, calls_a = _counting("A")
    read_b, calls_b = _counting("B")
    assert (remembered.get("a", read_a), remembered.get("b", read_b)) == ("A", "B")
    remembered.forget("a")
    remembered.get("a", read_a)
    remembered.get("b", read_b)
    assert (len(calls_a), len(calls_b)) == (2, 1)


def test_nothing_found_is_asked_for_again_and_an_expired_value_is_read_again():
    missing: Remembered[str, str | None] = Remembered(3600)
    read, calls = _counting(None)
    assert missing.get("a", read) is None
    assert missing.get("a", read) is None
    assert len(calls) == 2
    expiring: Remembered[str, str] = Remembered(0)
    read, calls = _counting("x")
    expiring.get("a", read)
    expiring.get("a", read)
    assert len(calls) == 2
