"""The CDN-facing origin: HLS playlists and segments from storage."""

from stb_origin.origin.routes import build_app, routes

__all__ = ["build_app", "routes"]
