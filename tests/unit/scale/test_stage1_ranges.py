"""When stage 1 cuts a free range: after the linger, or, while the partition is behind, once the
buffer is big or old enough (`sloguard.scale.stage1._grows`)."""

from __future__ import annotations

from sloguard.scale import stage1
from sloguard.scale.stage1 import RANGE_BEHIND_LAG, RANGE_BEHIND_MAX_S, RANGE_LINGER_S, _Buffer, _grows

BIG = 1 << 20


def _buffer(size: int, since: float = 0.0) -> _Buffer:
    return _Buffer(offsets=[0], timestamps=[0], values=[b"x" * size], since=since, size=size)


def test_a_caught_up_partition_is_cut_after_the_linger() -> None:
    buf = _buffer(100)
    assert _grows(buf, 0, RANGE_LINGER_S / 2, BIG)
    assert not _grows(buf, 0, RANGE_LINGER_S, BIG)
    # One record past the fetched ones may be a transaction marker: not behind.
    assert not _grows(buf, RANGE_BEHIND_LAG, RANGE_LINGER_S, BIG)


def test_a_partition_behind_grows_until_big_or_old() -> None:
    lag = RANGE_BEHIND_LAG + 1
    assert _grows(_buffer(100), lag, RANGE_LINGER_S * 10, BIG)
    assert not _grows(_buffer(BIG), lag, RANGE_LINGER_S * 10, BIG)
    assert not _grows(_buffer(100), lag, RANGE_BEHIND_MAX_S, BIG)


def test_buffer_counts_the_bytes_it_holds() -> None:
    buf = stage1._Buffer(offsets=[5, 6, 7], timestamps=[1, 2, 3], values=[b"ab", None, b"cde"], size=5)
    ts, values = buf.take(7)
    assert (ts, values) == ([1, 2], [b"ab", None])
    assert buf.size == 3 and buf.offsets == [7]
