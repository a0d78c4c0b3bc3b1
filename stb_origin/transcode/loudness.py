"""The loudness target and ffmpeg's two-pass ``loudnorm``, as plain data.

Target: EBU R128, -23 LUFS integrated, true peak at most -1 dBTP. A set-top box
sits next to broadcast channels that are mastered to R128 in Europe (ATSC A/85's
-24 LKFS in North America is within a decibel of it): a film must not jump
louder than the channel the viewer zapped from. The -16 LUFS of streaming apps
suits phones with weak speakers, not a TV with a broadcast tuner beside it.

Pass one measures each rendition's audio, after its downmix (a stereo fold of
5.1 is quieter than the 5.1 itself); pass two hands loudnorm those values, so
that it applies one fixed gain over the whole programme (linear mode: the mix's
dynamics untouched) whenever that gain keeps the true peak under the target.
Only when it cannot (a quiet programme with loud peaks) does loudnorm fall back
to its dynamic mode; ``linear`` says which.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from typing import Any

TARGET_I = -23.0  # LUFS, integrated
TARGET_TP = -1.0  # dBTP
# The widest loudness range loudnorm takes: a wide-range film mix must not be
# what stops the linear mode (loudnorm requires measured LRA <= target LRA).
TARGET_LRA = 50.0
_TARGETS = f"I={TARGET_I:g}:TP={TARGET_TP:g}:LRA={TARGET_LRA:g}"

# loudnorm's JSON report, after its "[loudnorm@<id> @ 0x...]" log prefix.
_REPORT = re.compile(r"^\[loudnorm@(\w+) @ 0x[0-9a-f]+\]\s*\n(\{.*?\})", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Loudness:
    """One rendition's audio as loudnorm measured it, and the gain pass two applies."""

    input_i: float  # LUFS
    input_tp: float  # dBTP
    input_lra: float  # LU
    input_thresh: float  # LUFS, the gating threshold
    target_offset: float  # dB, loudnorm's own correction for its dynamic mode
    gain_db: float  # the linear gain: TARGET_I - input_i
    linear: bool  # False: the gain would lift a peak over TARGET_TP; loudnorm goes dynamic

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "target_i": TARGET_I, "target_tp": TARGET_TP}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Loudness:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


def measure_filter(label: str, channels: int) -> str:
    """Pass one: measure only, reporting as JSON under the instance name loudnorm@label."""
    return f"loudnorm@{label}={_TARGETS}{_dual_mono(channels)}:print_format=json"


def normalise_filter(measured: Loudness, channels: int) -> str:
    """Pass two: loudnorm given pass one's values."""
    # loudnorm takes a measured value equal to its option's default (LRA 0, threshold
    # -70, I 0) for "not measured" and then never goes linear: a steady tone really
    # has a range of 0 LU, so such a value is passed a hundredth away from it.
    lra = max(measured.input_lra, 0.01)
    thresh = measured.input_thresh - 0.01 if measured.input_thresh == -70 else measured.input_thresh
    return (f"loudnorm={_TARGETS}:measured_I={min(measured.input_i, -0.01):.2f}"
            f":measured_TP={measured.input_tp:.2f}:measured_LRA={lra:.2f}"
            f":measured_thresh={thresh:.2f}:offset={measured.target_offset:.2f}"
            f":linear=true{_dual_mono(channels)}")


def _dual_mono(channels: int) -> str:
    # A mono track is played on both speakers: R128 counts it 3 dB louder than one channel.
    return ":dual_mono=true" if channels == 1 else ""


def parse_reports(log: str) -> dict[str, Loudness | None]:
    """Pass one's reports in ffmpeg's log, by the label each was measured under;
    None for silence, which has no loudness to correct (loudnorm says -inf)."""
    return {label: _loudness(json.loads(body)) for label, body in _REPORT.findall(log)}


def _loudness(report: dict[str, str]) -> Loudness | None:
    values = {k: float(report[k]) for k in
              ("input_i", "input_tp", "input_lra", "input_thresh", "target_offset")}
    if not all(math.isfinite(v) for v in values.values()):
        return None
    gain = round(TARGET_I - values["input_i"], 2)
    return Loudness(**values, gain_db=gain, linear=values["input_tp"] + gain <= TARGET_TP)
