"""The console's two HTML documents: the sign-in form, and the shell the app's
modules fill in. Nothing user-supplied is put in them unescaped; no inline
script or style, so the CSP can forbid both."""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse

from stb_origin.console.static import Bundle
from stb_origin.web.headers import NO_STORE


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def headers(public_base_url: str, key_uri_base: str = "") -> dict[str, str]:
    """Answer headers of every console page. The pages call the API of this
    origin, and of the public base URL and key host when those are elsewhere."""
    elsewhere = sorted({o for o in (_origin(public_base_url), _origin(key_uri_base)) if o})
    policy = {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", *elsewhere],
        "media-src": ["'self'", "blob:", *elsewhere],  # hls.js feeds the video from blob: URLs
        "connect-src": ["'self'", *elsewhere],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
    }  # hls.js runs without its worker (enableWorker: false): no worker-src
    return {
        **NO_STORE,
        "Content-Security-Policy": "; ".join(f"{name} {' '.join(sources)}"
                                             for name, sources in policy.items()),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        # Not no-referrer: with it browsers send "Origin: null" on our own POSTs,
        # which the Origin check must refuse. Nothing leaves for other sites.
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def _document(bundle: Bundle, title: str, body: str, head: str = "") -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        f'<link rel="icon" href="data:,">'  # no favicon request
        f'<link rel="stylesheet" href="{bundle.url("console.css")}">{head}</head>\n'
        f"<body>{body}</body></html>\n")


def sign_in(bundle: Bundle, page_headers: dict[str, str], csrf_token: str,
            error: str | None = None, status: int = 200,
            extra_headers: dict[str, str] | None = None) -> HTMLResponse:
    alert = (f'<p id="error" class="error" role="alert">{escape(error)}</p>'
             if error else "")
    body = f"""
<main id="page-sign-in" class="narrow">
<h1>stb-origin console</h1>
<p class="muted">For editors and admins of the content team.</p>
{alert}
<form id="sign-in" method="post" action="/console/sign-in">
<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="sign-in-submit" type="submit">Sign in</button>
</form>
</main>"""
    return HTMLResponse(_document(bundle, "Sign in · stb-origin console", body),
                        status_code=status, headers={**page_headers, **(extra_headers or {})})


def shell(bundle: Bundle, page_headers: dict[str, str], csrf_token: str, email: str,
          role: str) -> HTMLResponse:
    head = (f'<meta name="csrf-token" content="{escape(csrf_token)}">'
            f'<script type="module" src="{bundle.url("app.js")}"></script>'
            f'<link rel="modulepreload" href="{bundle.url("api.js")}">'
            f'<link rel="modulepreload" href="{bundle.url("dom.js")}">')
    admin_links = ('<li><a href="#/audit">Key audit</a></li>'
                   '<li><a href="#/admin">Users &amp; packages</a></li>'
                   '<li><a href="#/webhooks">Webhooks</a></li>'
                   if role == "admin" else "")
    body = f"""
<a class="skip" href="#main">Skip to content</a>
<header class="bar">
<span class="brand">stb-origin console</span>
<nav aria-label="Main"><ul>
<li><a href="#/assets">Assets</a></li>
<li><a href="#/upload">Upload</a></li>
<li><a href="#/channels">Channels</a></li>
{admin_links}
</ul></nav>
<div class="who">
<span id="signed-in-as" data-role="{escape(role)}">{escape(email)}</span>
<form id="sign-out" method="post" action="/console/sign-out">
<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">
<button id="sign-out-submit" class="secondary" type="submit">Sign out</button>
</form>
</div>
</header>
<p id="status" class="status" role="status" aria-live="polite"></p>
<main id="main" tabindex="-1"><p class="muted">Loading…</p></main>"""
    return HTMLResponse(_document(bundle, "stb-origin console", body, head),
                        headers=page_headers)


def problem(bundle: Bundle, page_headers: dict[str, str], title: str, message: str,
            status: int, extra_headers: dict[str, str] | None = None) -> HTMLResponse:
    body = f"""
<main id="page-problem" class="narrow">
<h1>{escape(title)}</h1>
<p id="error" class="error" role="alert">{escape(message)}</p>
<p><a id="start-over" href="/console">Start over</a></p>
</main>"""
    return HTMLResponse(_document(bundle, f"{title} · stb-origin console", body),
                        status_code=status, headers={**page_headers, **(extra_headers or {})})
