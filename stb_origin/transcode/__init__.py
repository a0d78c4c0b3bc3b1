"""Probe a source, plan its ladder, run ffmpeg once for all renditions."""

from stb_origin.transcode.argv import build_argv
from stb_origin.transcode.errors import MediaError
from stb_origin.transcode.ladder import Ladder, Rendition, plan_ladder
from stb_origin.transcode.probe import SourceInfo, probe
from stb_origin.transcode.run import transcode

__all__ = [
    "Ladder",
    "MediaError",
    "Rendition",
    "SourceInfo",
    "build_argv",
    "plan_ladder",
    "probe",
    "transcode",
]
