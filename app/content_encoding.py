"""Request bodies sent compressed (HTTP Content-Encoding gzip or deflate), inflated within a size limit."""

from __future__ import annotations

import zlib


class EncodingError(ValueError):
    """A Content-Encoding this server does not read, or a body that does not decompress (answered 400)."""


class InflatedTooLargeError(EncodingError):
    """A compressed body that inflates past its limit (answered 413)."""


def decompress(body: bytes, encoding: str | None, limit: int, setting: str) -> bytes:
    """A gzip or deflate request body (tritonclient's request_compression_algorithm), inflated to at most `limit`
    bytes, the value of `setting`: a small compressed body must not expand into gigabytes."""
    kind = (encoding or "identity").strip().lower()
    if kind == "identity":
        return body
    if kind not in ("gzip", "deflate"):
        raise EncodingError(f"Content-Encoding '{encoding}' is not supported; use gzip, deflate or none")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16 if kind == "gzip" else zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise EncodingError(f"the {kind} body cannot be decompressed: {error}") from None
    if len(data) > limit:
        raise InflatedTooLargeError(f"the decompressed body is over the limit of {limit:,} bytes ({setting})")
    if not inflater.eof:
        raise EncodingError(f"the {kind} body is truncated")
    return data
