"""``/graphql``: what boxes browse, in one query (strawberry), over the same data,
tokens and entitlements as the REST API."""
