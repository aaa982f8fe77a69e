"""Client configuration: resolved once, in the constructor, never at import.

Each setting comes from the explicit argument, then the environment, then the default.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import httpx

from ._exceptions import ConfigurationError

__all__ = ["API_KEY_ENV", "BASE_URL_ENV", "DEFAULT_BASE_URL", "Connection", "resolve_connection"]

logger = logging.getLogger("datalab_ocr")

DEFAULT_BASE_URL = "https://www.datalab.to"
API_KEY_ENV = "DATALAB_API_KEY"
BASE_URL_ENV = "DATALAB_BASE_URL"
_HOSTED_DOMAIN = "datalab.to"
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True, slots=True)
class Connection:
    """Where the client talks to, and with which key (None for a keyless local server)."""

    base_url: httpx.URL
    api_key: str | None = None

    def __repr__(self) -> str:
        key = "set" if self.api_key else "none"
        return f"Connection(base_url={str(self.base_url)!r}, api_key={key})"


def is_hosted(url: httpx.URL) -> bool:
    """Whether ``url`` is the hosted Datalab service (which always needs a key)."""
    host = url.host.lower()
    return host == _HOSTED_DOMAIN or host.endswith("." + _HOSTED_DOMAIN)


def resolve_connection(
    api_key: str | None, base_url: str | httpx.URL | None, *, local: bool
) -> Connection:
    """The base URL and key from the arguments, then the environment, then the defaults.

    ``local=True`` starts (once per process) the embedded local server and talks to it; an
    explicit ``base_url`` cannot be combined with it.
    """
    if local:
        if base_url is not None:
            raise ConfigurationError(
                "local=True starts an embedded server with its own address; do not also pass "
                "base_url"
            )
        return Connection(httpx.URL(_embedded_base_url()), api_key=None)
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    key = key.strip() if key else None
    url = _parse_base_url(base_url if base_url is not None else os.environ.get(BASE_URL_ENV))
    if not key and is_hosted(url):
        raise ConfigurationError(
            f"no API key for {url}: pass api_key=... or set the {API_KEY_ENV} environment "
            f"variable; to run without a key, use local=True (an embedded local OCR server) or "
            f"point base_url / {BASE_URL_ENV} at your own server"
        )
    if key and url.scheme == "http" and url.host not in _LOOPBACK:
        logger.warning(
            "the API key will be sent over plain HTTP to %s; use https:// outside a trusted "
            "network",
            url.host,
        )
    return Connection(url, api_key=key or None)


def _embedded_base_url() -> str:
    try:
        from .server import embedded_server
    except ImportError as error:
        raise ConfigurationError(
            "local=True needs the local server, which is an extra: "
            "pip install 'datalab-ocr[server]'"
        ) from error
    return embedded_server().base_url


def _parse_base_url(value: str | httpx.URL | None) -> httpx.URL:
    text = str(value).strip() if value else DEFAULT_BASE_URL
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as error:
        raise ConfigurationError(f"base URL {text!r} is not a valid URL: {error}") from error
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"base URL {text!r} must be an absolute http:// or https:// URL, like "
            f"{DEFAULT_BASE_URL}"
        )
    if url.query or url.fragment:
        raise ConfigurationError(f"base URL {text!r} must not carry a query or fragment")
    return url.copy_with(path=url.path.rstrip("/") or "/")
