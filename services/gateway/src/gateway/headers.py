"""Security headers on every HTTP answer of the gateway.

``nosniff``, no framing and no referrer everywhere; a content security policy that allows nothing on
every answer that does not bring its own (JSON and files are never rendered as pages; the interactive
docs pages bring theirs, :data:`gateway.docs.DOCS_POLICY`, which allows scripts from the gateway only),
and HSTS when the request came over TLS (directly, or as a trusted proxy says).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_API_POLICY = b"default-src 'none'; frame-ancestors 'none'"
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeaders:
    """Pure ASGI middleware adding the headers above to every HTTP response start."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [*_ALWAYS, (b"content-security-policy", _API_POLICY)]
        if scope.get("scheme") == "https":
            extra.append(_HSTS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((name, value) for name, value in extra if name not in present),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)
