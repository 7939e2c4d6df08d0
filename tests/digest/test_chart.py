"""The trend chart: a real PNG of pass rate and cost over the last 30 runs, drawn without a display."""

from __future__ import annotations

import struct
import threading
from datetime import datetime, timedelta, timezone

import pytest

from bot.digest.chart import DPI, HEIGHT_IN, WIDTH_IN, trend_png
from bot.digest.data import TrendPoint

pytestmark = pytest.mark.dates  # ages, windows and schedules: also checked a year ahead

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=timezone.utc)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def points(count: int, *, start: int = 1) -> list[TrendPoint]:
    return [TrendPoint(i, T0 + timedelta(days=i), (i % 5) / 4 if i % 7 else None, 0.05 * i)
            for i in range(start, start + count)]


def size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_SIGNATURE and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def test_the_chart_is_a_png_of_the_expected_size():
    png = trend_png(points(12))
    assert size(png) == (int(WIDTH_IN * DPI), int(HEIGHT_IN * DPI))
    assert len(png) > 10_000  # axes, lines and labels were drawn


def test_it_draws_the_last_30_runs_only():
    assert trend_png(points(45)) == trend_png(points(30, start=16))
    assert trend_png(points(45)) != trend_png(points(30, start=15))


def test_one_run_no_runs_and_failed_runs_still_draw():
    for data in ([], points(1), [TrendPoint(1, T0, None, 0.0)]):
        assert size(trend_png(data)) == (800, 450)


def test_it_can_draw_from_several_threads_at_once():
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(trend_png(points(30)))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1
