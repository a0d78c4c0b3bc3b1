from __future__ import annotations

import pytest

from stb_origin.transcode.progress import progress_fraction


@pytest.mark.parametrize("line,expected", [
    ("out_time_us=5000000", 0.5),
    ("out_time_us=0", 0.0),
    ("out_time_us=12000000", 1.0),  # audio can run past the video's duration
    ("out_time_us=-21333", 0.0),  # AAC priming before the first frame
    ("out_time_us=N/A", None),
    ("out_time_ms=5000000", None),  # same value, counted once via out_time_us
    ("out_time=00:00:05.000000", None),
    ("frame=150", None),
    ("progress=continue", None),
    ("progress=end", 1.0),
    ("", None),
])
def test_progress_lines(line: str, expected: float | None) -> None:
    assert progress_fraction(line, 10.0) == expected


def test_unknown_duration_reports_only_the_end() -> None:
    assert progress_fraction("out_time_us=5000000", 0.0) is None
    assert progress_fraction("progress=end", 0.0) == 1.0
