"""The HTTP layer every domain shares: request to services, JSON answers and errors,
cache headers, paging, CORS, bearer tokens."""
