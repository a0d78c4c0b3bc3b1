"""The one error the transcode stage raises for a source it cannot or will not handle."""

from __future__ import annotations

# Codes, for clients and the asset record:
#   invalid_media         not media, truncated, undecodable, or a container we refuse
#   no_media              neither an audio nor a video stream
#   too_short             zero or near-zero duration
#   too_long              longer than Settings.max_source_seconds
#   too_large_dimensions  wider or taller than MAX_DIMENSION
#   unsupported_media     media ffmpeg reads but we do not accept
#   probe_timeout         ffprobe did not answer within Settings.probe_timeout_s
#   transcode_failed      ffmpeg rejected the source while encoding
#   transcode_timeout     ffmpeg did not finish within Settings.transcode_timeout_s


class MediaError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
