"""Pure parts of the two-pass loudnorm: reading pass one's reports, what pass two is told."""

from __future__ import annotations

from stb_origin.transcode.loudness import TARGET_I, TARGET_TP, measure_filter, parse_reports

# What ffmpeg 5.1 logs at the end of a pass-one run (two renditions, one silent).
LOG = """size=N/A time=00:00:04.03 bitrate=N/A speed=4.03x
video:0kB audio:15120kB subtitle:0kB other streams:0kB global headers:0kB muxing overhead: unknown
[loudnorm@audio3_ec3 @ 0x56470c85f040]
{
\t"input_i" : "-30.46",
\t"input_tp" : "-3.09",
\t"input_lra" : "6.20",
\t"input_thresh" : "-40.46",
\t"output_i" : "-22.96",
\t"output_tp" : "-1.00",
\t"output_lra" : "5.10",
\t"output_thresh" : "-32.96",
\t"normalization_type" : "dynamic",
\t"target_offset" : "-0.04"
}
[loudnorm@audio0_aac @ 0x56470c862840]
{
\t"input_i" : "-10.02",
\t"input_tp" : "-0.31",
\t"input_lra" : "0.10",
\t"input_thresh" : "-20.02",
\t"output_i" : "-22.96",
\t"output_tp" : "-13.25",
\t"output_lra" : "0.10",
\t"output_thresh" : "-32.96",
\t"normalization_type" : "dynamic",
\t"target_offset" : "-0.04"
}
[loudnorm@audio1_aac @ 0x56470c860440]
{
\t"input_i" : "-inf",
\t"input_tp" : "-inf",
\t"input_lra" : "0.00",
\t"input_thresh" : "-70.00",
\t"output_i" : "-inf",
\t"output_tp" : "-inf",
\t"output_lra" : "0.00",
\t"output_thresh" : "-70.00",
\t"normalization_type" : "dynamic",
\t"target_offset" : "inf"
}
"""


def test_target_is_ebu_r128() -> None:
    assert (TARGET_I, TARGET_TP) == (-23.0, -1.0)


def test_reports_are_read_by_the_label_each_was_measured_under() -> None:
    reports = parse_reports(LOG)
    assert sorted(reports) == ["audio0_aac", "audio1_aac", "audio3_ec3"]
    loud = reports["audio0_aac"]
    assert loud is not None
    assert (loud.input_i, loud.input_tp, loud.input_lra, loud.input_thresh) == (
        -10.02, -0.31, 0.10, -20.02)
    # Turned down 12.98 dB, its peak lands at -13.29 dBTP: one linear gain does it.
    assert (loud.gain_db, loud.linear) == (-12.98, True)
    assert loud.to_json()["target_i"] == -23.0


def test_a_gain_that_would_lift_a_peak_over_the_target_is_not_linear() -> None:
    quiet_with_peaks = parse_reports(LOG)["audio3_ec3"]
    assert quiet_with_peaks is not None
    assert quiet_with_peaks.gain_db == 7.46
    assert quiet_with_peaks.linear is False  # -3.09 + 7.46 > -1: loudnorm goes dynamic


def test_silence_has_no_loudness_to_correct() -> None:
    assert parse_reports(LOG)["audio1_aac"] is None


def test_pass_one_names_each_measurement() -> None:
    assert measure_filter("audio0_aac", 2) == (
        "loudnorm@audio0_aac=I=-23:TP=-1:LRA=50:print_format=json")
    assert measure_filter("audio2_aac", 1).endswith(":dual_mono=true:print_format=json")
