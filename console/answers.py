"""Answers made once per state of their data, and served from memory with an ETag and gzip.

The plan list and the map are what every page asks for, over and over, and they change only when
a plan changes state or the lake gains a quarter hour. Building them (reading the store or gold,
validating, serialising 350 kB of GeoJSON) cost 30 ms of server CPU a request; the benchmark's 50
clients then waited seconds. A route that can name the state its answer depends on (the plan
trail's newest id; the lake files' stamps) keeps the finished bytes per state — the body, its gzip
and its ETag — so a request costs the check of that state and a copy to the socket. Browsers
revalidate (``Cache-Control: private, no-cache``) and get 304 while nothing changed.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass

from fastapi import Request, Response

#: Bodies shorter than this go uncompressed: gzip's header and the client's work outweigh it.
GZIP_MIN_BYTES = 1024
#: Quick and still a fifth to a tenth the size of the GeoJSON; done once per state, not per request.
GZIP_LEVEL = 6
JSON = "application/json"


@dataclass(frozen=True)
class Document:
    """A finished JSON answer: its bytes, their gzip (None when too short to gain) and ETag."""

    body: bytes
    gzipped: bytes | None
    etag: str

    @classmethod
    def of(cls, body: bytes) -> Document:
        gzipped = gzip.compress(body, GZIP_LEVEL, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
        return cls(body, gzipped, f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"')


def respond(request: Request, document: Document) -> Response:
    """``document`` for ``request``: 304 when its ``If-None-Match`` names the ETag, gzip when it
    accepts gzip, else the plain bytes."""
    headers = {
        "ETag": document.etag,
        # every reader may see these answers; private keeps shared caches out, no-cache makes the
        # browser ask again each time (with If-None-Match)
        "Cache-Control": "private, no-cache",
        "Vary": "Accept-Encoding",
    }
    tags = _tags(request.headers.get("if-none-match", ""))
    if "*" in tags or document.etag in tags:
        return Response(status_code=304, headers=headers)
    if document.gzipped is not None and _accepts_gzip(request.headers.get("accept-encoding", "")):
        return Response(document.gzipped, media_type=JSON, headers={**headers, "Content-Encoding": "gzip"})
    return Response(document.body, media_type=JSON, headers=headers)


def _tags(header: str) -> set[str]:
    """The entity tags of an ``If-None-Match`` header (weak ones compared by their value, as
    RFC 9110 says a GET's If-None-Match does); ``*`` matches any."""
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _accepts_gzip(header: str) -> bool:
    """Whether an ``Accept-Encoding`` header lets gzip through (``gzip;q=0`` refuses it)."""
    for coding in header.lower().split(","):
        name, _, params = coding.strip().partition(";")
        if name.strip() in ("gzip", "*"):
            q = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False
