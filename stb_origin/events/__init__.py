"""GET /v1/events: the event log (``stb_origin.eventlog``) to WebSocket and SSE clients."""
