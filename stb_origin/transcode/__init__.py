"""Probe a source, measure its complexity, plan its ladder, run ffmpeg once for all renditions."""

from stb_origin.transcode.argv import build_argv
from stb_origin.transcode.complexity import Complexity, analyse
from stb_origin.transcode.errors import MediaError
from stb_origin.transcode.ladder import Ladder, Rendition, plan_ladder
from stb_origin.transcode.probe import AudioFile, AudioTrack, SourceInfo, probe, probe_audio_file
from stb_origin.transcode.run import transcode

__all__ = [
    "AudioFile",
    "AudioTrack",
    "Complexity",
    "Ladder",
    "MediaError",
    "Rendition",
    "SourceInfo",
    "analyse",
    "build_argv",
    "plan_ladder",
    "probe",
    "probe_audio_file",
    "transcode",
]
