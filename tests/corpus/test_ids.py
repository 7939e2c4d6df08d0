"""Case ids: stable per message, [a-z0-9], and user-typed prefixes validated."""

import pytest

from bot.core.errors import InvalidIdError
from bot.corpus.ids import check_prefix, slack_case_id


def test_id_is_stable_and_short():
    first = slack_case_id("C0123", "1763700000.000100")
    assert first == slack_case_id("C0123", "1763700000.000100")
    assert len(first) == 8 and first.isalnum() and first == first.lower()


def test_different_messages_get_different_ids():
    ids = {slack_case_id("C0123", f"1763700000.{n:06d}") for n in range(2000)}
    assert len(ids) == 2000


@pytest.mark.parametrize("typed", ["../../etc/passwd", "abc/def", "ab.c", "", "  ", "k3m9 x2", "é123", "abcd\x00"])
def test_bad_ids_are_refused(typed):
    with pytest.raises(InvalidIdError, match="is not a case id"):
        check_prefix(typed)


def test_short_prefix_is_refused():
    with pytest.raises(InvalidIdError, match="at least 4"):
        check_prefix("k3m")


def test_prefix_is_normalised():
    assert check_prefix(" K3M9 ") == "k3m9"
