"""Who may use the web UI: one ASGI middleware in front of everything the server answers (the page, gradio's
API, the queue's event stream, file routes, uploads, websockets), so that no request reaches gradio without it.

    vlmtune webui           # prints http://127.0.0.1:7860/?token=...: open that URL
    curl -H "Authorization: token $TOKEN" http://127.0.0.1:7860/gradio_api/info      # a script

A request passes when all of these hold, else it gets 401 (no or a wrong secret) or 403 (cross-site):
- it carries the token: `?token=` in the URL (a browser's first visit: the answer sets a cookie, so the page's
  own later requests carry it), that cookie, or an `Authorization: token ...` (or `Bearer ...`) header; or the
  password (HTTP Basic: the browser asks for it; any user name) when one is set;
- it is not cross-site: an `Origin` other than the page's own (the scheme-less `host:port` of its Host header) is
  refused, and so is a state-changing request (POST, PUT ...) without `Origin` whose `Referer` is another
  site's (browsers send form posts and uploads without a CORS preflight, so the server must refuse them);
- on a loopback UI, its Host header names this machine (127.0.0.1, localhost, [::1]): a page whose name an
  attacker points at 127.0.0.1 (DNS rebinding) is refused even when the UI runs with --no_token.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import parse_qs, urlsplit

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def same(secret: str, given: str | None) -> bool:
    """`given` equals `secret`, compared in constant time (no timing hint of how much of it is right)."""
    return given is not None and hmac.compare_digest(secret.encode(), given.encode())


def host_name(netloc: str) -> str:
    """The host of `host[:port]` (an IPv6 literal without its brackets), lower case."""
    return (urlsplit(f"//{netloc}").hostname or "").lower()


class Guard:
    """The middleware: `token` (None: --no_token), `password` (None: none), `port` (names the cookie, so that two
    UIs on one machine keep theirs) and `loopback` (the UI listens on this machine only)."""

    def __init__(self, app, token: str | None, password: str | None, port: int, loopback: bool):
        self.app, self.token, self.password, self.loopback = app, token, password, loopback
        self.cookie = f"vlmtune_webui_{port}"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            await self.refuse(scope, receive, send, *refusal)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[0]
        if self.token is None or not same(self.token, query):
            await self.app(scope, receive, send)
            return

        async def with_cookie(message) -> None:  # the token came in the URL: the page's later requests send it
            if message["type"] == "http.response.start":
                cookie = f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())]}
            await send(message)

        await self.app(scope, receive, with_cookie)

    def refusal(self, scope, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, reason) when the request must be refused, else None."""
        host = headers.get("host", "")
        if self.loopback and host_name(host) not in LOOPBACK_NAMES:
            return 403, f"Host {host!r} is not this machine (this UI listens on loopback only)"
        origin = headers.get("origin")
        if origin is None and scope.get("method", "GET") not in SAFE_METHODS:
            origin = headers.get("referer")  # browsers that leave Origin out of a form post still send Referer
        if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
            return 403, f"cross-site request refused: {origin!r} is not this page ({host})"
        if not self.authenticated(scope, headers):
            return 401, "open the URL that `vlmtune webui` printed (it carries ?token=...)" + (
                ", or give the password" if self.password else ""
            )
        return None

    def authenticated(self, scope, headers: dict[str, str]) -> bool:
        if self.token is None and self.password is None:  # --no_token on loopback
            return True
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if self.password is not None and scheme.lower() == "basic":
            try:
                user_password = base64.b64decode(credentials, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                user_password = ""
            if same(self.password, user_password.partition(":")[2]):
                return True
        if self.token is None:
            return False
        if scheme.lower() in ("token", "bearer") and same(self.token, credentials.strip()):
            return True
        cookies = dict(
            part.strip().split("=", 1) for part in headers.get("cookie", "").split(";") if "=" in part.strip()
        )
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[0]
        return same(self.token, cookies.get(self.cookie)) or same(self.token, query)

    async def refuse(self, scope, receive, send, status: int, reason: str) -> None:
        if scope["type"] == "websocket":  # closing before accepting: the server answers the handshake with 403
            await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})
            return
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        if status == 401 and self.password is not None:
            headers.append((b"www-authenticate", b'Basic realm="vlmtune webui", charset="UTF-8"'))
        body = f"vlmtune web UI: {'not authorized' if status == 401 else 'refused'}: {reason}\n".encode()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
