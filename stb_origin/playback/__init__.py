"""Playback protection and sessions: signed URLs and /v1/playback."""
