"""Placeholder until the channels API lands its source parsing: ffmpeg's input
arguments for a source URL."""

from __future__ import annotations


def input_args(url: str) -> list[str]:
    if url.startswith("udp://"):
        return ["-protocol_whitelist", "udp", "-i", url]
    return ["-i", url]
