"""Webhooks: subscriptions to events of the event log, delivered signed by the RQ workers."""
