"""Logs, the access log, metrics and the Redis-shared metrics every process exports."""
