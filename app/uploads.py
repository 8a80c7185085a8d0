"""Reading the files of a multipart upload as the body streams in, each checked against its size limit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from app.content_encoding import EncodingError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FORM_CONTENT_TYPE = b"multipart/form-data"


class UploadTooLargeError(ValueError):
    """An uploaded file or request body over its limit, or more files than allowed."""


class MalformedFormError(ValueError):
    """A multipart body that cannot be parsed: no boundary, a broken part, or cut off before its end."""


class MissingFormFieldError(ValueError):
    """Not a multipart form, or no file in the expected field."""


class ClientGoneError(ValueError):
    """The client disconnected (or the body limit cut it off) before the whole body arrived."""


class _FormFiles:
    """python-multipart callbacks that keep the files of one field as bytes.

    Starlette's form parsing (what `UploadFile = File()` uses) spools every part through a temporary file object
    and an UploadFile, work that the small images this service takes do not need (docs/benchmark.md has its cost).
    Here each part is a list of byte slices, checked against the size limit as it grows.
    """

    def __init__(self, field: str, max_bytes: int, max_files: int) -> None:
        self.field, self.max_bytes, self.max_files = field.encode(), max_bytes, max_files
        self.files: list[bytes] = []
        self._header_name = b""
        self._header_value = b""
        self._wanted = False
        self._filename = ""
        self._chunks: list[bytes] = []
        self._size = 0
        self.open_part = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_part,
            "on_header_end": self._header_end,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self.open_part, self._wanted, self._chunks, self._size = True, False, [], 0
        self._header_name = self._header_value = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_part(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            _, options = parse_options_header(self._header_value)
            self._wanted = options.get(b"name") == self.field
            self._filename = printable(options.get(b"filename", b"upload"))
            if self._wanted and len(self.files) >= self.max_files:
                raise UploadTooLargeError(
                    f"more than one file in field '{self.field.decode()}': this route reads one image "
                    "(POST /predict/batch reads several)"
                    if self.max_files == 1
                    else f"more than {self.max_files} files sent; the limit per request is {self.max_files}"
                )
        self._header_name = self._header_value = b""

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._wanted:
            return
        self._size += end - start
        if self._size > self.max_bytes:
            number = f" #{len(self.files) + 1}" if self.max_files > 1 else ""
            raise UploadTooLargeError(
                f"file{number} '{self._filename}' is over the limit of {self.max_bytes:,} bytes (MAX_UPLOAD_BYTES)"
            )
        self._chunks.append(data[start:end])

    def _part_end(self) -> None:
        if self._wanted:
            self.files.append(b"".join(self._chunks))
        self.open_part, self._wanted, self._chunks = False, False, []


def printable(name: bytes) -> str:
    """The client's filename for messages only (never as a path), shortened and stripped of control characters."""
    return "".join(ch for ch in name.decode("utf-8", "replace") if ch.isprintable())[:80]


async def read_form_files(request: Request, field: str, max_bytes: int, max_files: int = 1) -> list[bytes]:
    """The contents of the files sent in multipart form field `field`, in upload order (at least one).

    The body is parsed as it streams in; a file over `max_bytes`, or more than `max_files` of them, ends the read
    at once with UploadTooLargeError.
    """
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != FORM_CONTENT_TYPE:
        shown = kind.decode("latin-1") or "none"
        raise MissingFormFieldError(
            f"missing form field '{field}': send the image as multipart/form-data field '{field}' "
            f"(the request's Content-Type is {shown})"
        )
    encoding = request.headers.get("content-encoding", "identity")
    if encoding.strip().lower() != "identity":  # the parser would read compressed bytes as a broken form
        raise EncodingError(
            f"Content-Encoding '{encoding}' is not read on this route: send the form uncompressed "
            "(the image files in it are compressed already)"
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise MalformedFormError("malformed multipart body: the Content-Type header has no boundary")
    collector = _FormFiles(field, max_bytes, max_files)
    try:
        parser = MultipartParser(boundary, collector.callbacks())  # refuses a boundary it cannot take
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except FormParserError as error:
        raise MalformedFormError(f"malformed multipart body: {error}") from None
    except ClientDisconnect:
        raise ClientGoneError("the client disconnected before the upload was complete") from None
    if collector.open_part:
        raise MalformedFormError("malformed multipart body: it ends inside a part (no closing boundary)")
    if not collector.files:
        raise MissingFormFieldError(
            f"missing form field '{field}': send the image as multipart/form-data field '{field}'"
        )
    return collector.files
