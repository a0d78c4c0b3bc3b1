"""The HTML of the /device page: plain forms, no script, every value escaped.

Element ids are stable, for people and for browser tests alike: each page's
<main> says which step it is (``page-sign-in``, ``page-enter-code``...), and
every field has ``id`` = ``name``.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

from starlette.responses import HTMLResponse

from stb_origin import scopes
from stb_origin.oauth.usercode import display
from stb_origin.web.headers import NO_STORE

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1b1d21}
main{max-width:26rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:8px;
box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.4rem;margin-top:0}label{display:block;margin:1rem 0 .25rem;font-weight:600}
input{box-sizing:border-box;width:100%;padding:.6rem;font-size:1rem;border:1px solid #9aa0a6;
border-radius:4px}#user_code{font-family:monospace;font-size:1.4rem;letter-spacing:.15em;
text-transform:uppercase}button{margin-top:1.25rem;padding:.6rem 1.2rem;font-size:1rem;
border:0;border-radius:4px;background:#1a73e8;color:#fff;cursor:pointer}
button.secondary{background:#e8eaed;color:#1b1d21}.error{color:#b00020;font-weight:600}
.code{font-family:monospace;font-size:1.6rem;letter-spacing:.15em}dt{font-weight:600}
dd{margin:0 0 .75rem}.who{color:#5f6368;font-size:.9rem}.who button{margin:0 0 0 .5rem;
padding:.2rem .6rem;font-size:.85rem}form.inline{display:inline}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
# No script at all; the one style block allowed by its hash; no framing, so
# the Approve button cannot be clickjacked; the URL's code not leaked onwards.
HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": (f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
SCOPE_TEXT = {
    scopes.PLAYBACK: "play what your subscription includes",
    scopes.ACCOUNT: "see and manage your account's devices",
    scopes.ASSETS_READ: "see the content library",
    scopes.ASSETS_WRITE: "upload and delete content",
    scopes.ADMIN: "administer every account",
}


def _page(page_id: str, title: str, body: str, status: int = 200,
          headers: dict[str, str] | None = None) -> HTMLResponse:
    html = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n"
            f'<body><main id="{page_id}"><h1>{escape(title)}</h1>\n{body}\n</main></body></html>\n')
    return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})


def _hidden(csrf_token: str, action: str) -> str:
    return (f'<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">'
            f'<input type="hidden" name="action" value="{escape(action)}">')


def _error(message: str | None) -> str:
    return f'<p id="error" class="error" role="alert">{escape(message)}</p>' if message else ""


def _signed_in_as(csrf_token: str, email: str) -> str:
    return (f'<div class="who">Signed in as <span id="signed-in-as">{escape(email)}</span>'
            f'<form id="sign-out" class="inline" method="post" action="/device">'
            f'{_hidden(csrf_token, "sign_out")}'
            f'<button id="sign-out-submit" class="secondary" type="submit">Sign out</button>'
            f"</form></div>")


def sign_in(csrf_token: str, user_code: str = "", error: str | None = None,
            status: int = 200) -> HTMLResponse:
    return _page("page-sign-in", "Sign in to connect your box", f"""
{_error(error)}
<form id="sign-in" method="post" action="/device">
{_hidden(csrf_token, "sign_in")}
<input type="hidden" name="user_code" value="{escape(user_code)}">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="sign-in-submit" type="submit">Sign in</button>
</form>""", status)


def enter_code(csrf_token: str, email: str, user_code: str = "", error: str | None = None,
               status: int = 200) -> HTMLResponse:
    return _page("page-enter-code", "Enter the code shown on your TV", f"""
{_signed_in_as(csrf_token, email)}
{_error(error)}
<form id="enter-code" method="post" action="/device">
{_hidden(csrf_token, "enter_code")}
<label for="user_code">Code</label>
<input id="user_code" name="user_code" value="{escape(user_code)}" placeholder="XXXX-XXXX"
 autocomplete="off" autocapitalize="characters" spellcheck="false" maxlength="16" required
 autofocus>
<button id="continue" type="submit">Continue</button>
</form>""", status)


def confirm(csrf_token: str, email: str, user_code: str, client_name: str, device_model: str,
            device_serial: str, scopes: frozenset[str]) -> HTMLResponse:
    powers = "".join(f"<li>{escape(SCOPE_TEXT.get(s, s))}</li>" for s in sorted(scopes))
    return _page("page-confirm", "Connect this box?", f"""
{_signed_in_as(csrf_token, email)}
<p>Only approve if this code is on the screen in front of you.</p>
<dl>
<dt>Code</dt><dd id="confirm-user-code" class="code">{escape(display(user_code))}</dd>
<dt>App</dt><dd id="confirm-client">{escape(client_name)}</dd>
<dt>Device</dt><dd><span id="confirm-device-model">{escape(device_model)}</span>
 (serial <span id="confirm-device-serial">{escape(device_serial)}</span>)</dd>
<dt>It will be able to</dt><dd><ul id="confirm-scopes">{powers}</ul></dd>
</dl>
<form id="decision" method="post" action="/device">
{_hidden(csrf_token, "decide")}
<button id="approve" name="decision" value="approve" type="submit">Approve</button>
<button id="deny" name="decision" value="deny" type="submit" class="secondary">Deny</button>
</form>""")


def approved(device_model: str) -> HTMLResponse:
    return _page("page-approved", "Your box is connected", f"""
<p id="result">You can go back to your TV: <strong>{escape(device_model)}</strong>
is signing in now.</p>
<p><a id="start-over" href="/device">Connect another box</a></p>""")


def denied() -> HTMLResponse:
    return _page("page-denied", "Request denied", """
<p id="result">The box was not connected. If you did not start this, nothing else
needs to be done.</p>
<p><a id="start-over" href="/device">Enter another code</a></p>""")


def device_limit(limit: int) -> HTMLResponse:
    return _page("page-device-limit", "Too many devices", f"""
<p id="result">Your account already has {limit} devices connected, the most it may
have. Remove one in your account settings, then enter the code again.</p>""", 409)


def problem(page_id: str, title: str, message: str, status: int,
            headers: dict[str, str] | None = None) -> HTMLResponse:
    return _page(page_id, title, f'<p id="error" class="error" role="alert">{escape(message)}'
                                 f'</p>\n<p><a id="start-over" href="/device">Start over</a></p>',
                 status, headers)
