"""Offline sync: what a box keeps a copy of (its entitlements, the channels, the
guide by channel and day) and ``GET /v1/sync``, which brings a copy up to date.

See ``pages`` for the protocol and ``client`` for a reference box.
"""
