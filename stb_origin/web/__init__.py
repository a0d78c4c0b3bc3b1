"""The HTTP layer every domain shares."""
