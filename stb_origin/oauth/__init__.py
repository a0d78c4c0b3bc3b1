"""The OAuth 2.0 authorization server: clients, the device grant, refresh, revocation."""
