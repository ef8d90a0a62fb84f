"""The console's forms and what guards them from other sites (CSRF): one check every form uses.

A form is accepted only
- from this origin: `Sec-Fetch-Site`, when the browser sends it, is `same-origin` (or `none`: typed
  by the user), and `Origin`, when sent, is this server's own (another port of the same host is
  another origin, though the same site: cookies do not tell them apart, this does);
- with its token: a hidden field that is the HMAC of what binds the form to this browser, the
  session's id once signed in, before that a random cookie that `GET /console/login` sets (a page
  of another origin can neither read the token nor work it out);
- of a form's size: the body is counted while it is read and refused past `FORM_LIMIT` (413).

A form refused for where it came from is answered 403 with a page that says why (`CrossSite`).
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs, urlsplit

from fastapi import Request

from api.console.session import signature
from api.messages import read_body
from infra.parsing import ascii_integer

#: A console form is a few fields: a token, a target, a filter or two.
FORM_LIMIT = 8 * 1024
#: The hidden field each form carries.
FIELD = "csrf"
#: The cookie binding the sign-in form to the browser that asked for it, before there is a session.
SIGN_IN_COOKIE = "yaosu_sign_in"


class CrossSite(Exception):
    """A form sent from another origin, or without the token this browser was given: refused (403)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        #: One of a few fixed sentences, each in the console's catalogue (the page says it in its language).
        self.why = why


def form_token(secret: bytes, binding: str) -> str:
    """The token a form bound to `binding` (a session id, or the sign-in cookie) carries."""
    return signature(secret, "form", binding)


def from_here(request: Request) -> None:
    """Refuse a request a page of another origin made (the headers a browser sets, not a script)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise CrossSite("the form was sent from another site")
    origin = request.headers.get("origin")
    if origin is not None and not same_origin(origin, request):
        raise CrossSite("the form was sent from another origin")


def same_origin(origin: str, request: Request) -> bool:
    """Whether `Origin` names the host and port this request was sent to (the Host header, which
    the guard has checked; the scheme is left out: behind a proxy that ends TLS it reads http)."""
    parts = urlsplit(origin.lower())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False  # "null", among others: a sandboxed frame, a file, a redirect from elsewhere
    default = {"http": 80, "https": 443}[parts.scheme]
    try:
        port = parts.port or default
    except ValueError:
        return False
    host = request.headers.get("host", "").lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        given = rest.removeprefix(":")
    else:
        name, _, given = host.partition(":")
    return parts.hostname == name and port == (ascii_integer(given) if given else default)


async def posted_form(request: Request, binding: str | None) -> dict[str, str]:
    """The fields of a console form, once it is shown to come from this origin, with the token
    bound to `binding`; each field's first value. `CrossSite` or a 413 problem otherwise."""
    from_here(request)
    body = await read_body(request, FORM_LIMIT)
    fields = {name: values[0] for name, values in parse_qs(body.decode("utf-8", errors="replace")).items()}
    secret = request.app.state.settings.session_secret
    sent = fields.get(FIELD, "")
    if binding is None or not hmac.compare_digest(sent.encode(), form_token(secret, binding).encode()):
        raise CrossSite("the form's token is missing or not this browser's (the page may be old: open it again)")
    return fields
