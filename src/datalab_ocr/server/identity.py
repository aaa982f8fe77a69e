"""What the server tells clients about itself in response headers.

* ``X-Datalab-Server-Id``: a stable id of what makes results equal (this package's version,
  the engine, its library versions, the settings that change the output). Two local servers
  with the same id give the same result for the same request, so a client's result cache keys
  local results by it instead of the base URL, which changes with every embedded server's port.
* ``X-Datalab-Server-Instance``: a random id of this running server. Request ids live only as
  long as the server, so a client forgets recorded jobs of another instance.
* ``X-Datalab-Long-Poll``: the longest ``?wait=`` in seconds a check accepts (see
  :mod:`datalab_ocr.server.app`).

The hosted API sends none of them; clients treat it exactly as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from importlib import metadata

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datalab_ocr.server.config import ServerConfig
from datalab_ocr.server.engine import base_versions, engine_versions

__all__ = ["IdentityHeadersMiddleware", "ServerIdentity", "server_identity"]

logger = logging.getLogger(__name__)


class ServerIdentity:
    """The identity headers of one running server."""

    def __init__(self, result_id: str, instance: str, long_poll: float) -> None:
        self.result_id = result_id
        self.instance = instance
        self.long_poll = long_poll

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The raw ASGI header pairs added to every answer."""
        pairs = [
            (b"x-datalab-server-id", self.result_id.encode("ascii")),
            (b"x-datalab-server-instance", self.instance.encode("ascii")),
        ]
        if self.long_poll > 0:
            pairs.append((b"x-datalab-long-poll", f"{self.long_poll:g}".encode("ascii")))
        return pairs


def server_identity(config: ServerConfig) -> ServerIdentity:
    """The identity of a server running with ``config``; a fresh instance id each call."""
    try:
        own = metadata.version("datalab-ocr")
    except metadata.PackageNotFoundError:
        own = "unknown"
    try:
        engine = engine_versions(config.engine)
    except ImportError:
        # The engine is missing: every job will fail with a clear message, and no result of
        # this server can be cached anyway.
        engine = {}
    described = {
        "datalab-ocr": own,
        "engine": config.engine,
        "versions": {**base_versions(), **engine},
        "render_scale": config.render_scale,
        "max_image_pixels": config.max_image_pixels,
    }
    digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
    identity = ServerIdentity(
        result_id=f"local-{digest[:32]}",
        instance=secrets.token_hex(8),
        long_poll=config.long_poll_max,
    )
    logger.debug("server identity %s, instance %s", identity.result_id, identity.instance)
    return identity


class IdentityHeadersMiddleware:
    """Adds the identity headers to every HTTP answer of the app."""

    def __init__(self, app: ASGIApp, identity: ServerIdentity) -> None:
        self.app = app
        self.extra = identity.headers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
