"""The content team's web app at /console: sign-in, pages served as static files,
and the access tokens those pages use to call the REST API."""
