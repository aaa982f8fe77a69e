"""A local server that speaks the Datalab OCR API, with real OCR (the ``server`` extra).

Use it without an API key, in CI, or to keep documents in-house::

    from datalab_ocr.server import ServerConfig, ServerProcess

    with ServerProcess(ServerConfig(workers=2)) as server:
        print(server.base_url)  # http://127.0.0.1:<port>; POST /api/v1/ocr like the hosted API

Modules, one job each: ``config`` (settings), ``app`` (routes), ``options`` (form fields),
``formats`` (file kinds), ``jobs`` (job store, expiry, cache), ``runner`` (running jobs),
``workers`` (process pool), ``engine`` (documents to pages), ``textlayer`` (PDF text layers),
``ocr_tesseract`` and ``ocr_rapid`` (OCR engines), ``office`` (LibreOffice), ``limits`` (rate
limit, counters), ``bodylimit`` (413), ``process`` and ``child`` (the server as a child process),
``embedded`` (the in-thread server and the one-per-process embedded server), ``cli``.
"""

from __future__ import annotations

from datalab_ocr.server.app import create_app
from datalab_ocr.server.cli import add_serve_arguments, run_serve
from datalab_ocr.server.config import ServerConfig
from datalab_ocr.server.embedded import LocalServer, embedded_server
from datalab_ocr.server.process import LocalServerError, ServerProcess

__all__ = [
    "LocalServer",
    "LocalServerError",
    "ServerConfig",
    "ServerProcess",
    "add_serve_arguments",
    "create_app",
    "embedded_server",
    "run_serve",
]
