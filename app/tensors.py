"""The serving protocols' tensor encodings -> what the model takes. Pure functions: no HTTP, no model.

Each decoder returns either the pixels of every image as one array [N, 28, 28] (uint8 when they are whole numbers:
a bulk request waits for the model in a quarter of float32's memory), or a list of items, one per image: a
[28, 28] pixel array, or the bytes of an encoded image, which the caller sends through
`app.imaging.preprocess` like an upload to /predict. Numeric tensors are read whole by NumPy, not value by value, so
decoding is not what limits a request of thousands of images. Every problem raises `TensorError` with a message
meant for the client (the routers answer it with a 400).
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import Any

import numpy as np

from app.contract import IMAGE_SIDE

Item = np.ndarray | bytes  # a [28, 28] pixel array (uint8 or float32), or an encoded image file
Decoded = np.ndarray | list[Item]  # all the pixels [N, 28, 28], or one item per image

# Open Inference Protocol datatypes accepted for the image input, with their little-endian NumPy dtype.
V2_NUMERIC: dict[str, np.dtype] = {"UINT8": np.dtype("<u1"), "FP32": np.dtype("<f4")}
V2_ACCEPTED = (*V2_NUMERIC, "BYTES")


class TensorError(ValueError):
    """The request's tensor cannot be read as MNIST images; the message says why."""


def check_pixels(array: np.ndarray, what: str) -> np.ndarray:
    """[N, 28, 28] with every value a finite pixel 0-255 (NaN would reach the JSON answer as invalid JSON): whole
    numbers as uint8, which wait for the model in a quarter of float32's memory; fractions as float32."""
    if array.ndim != 3 or array.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or array.shape[0] == 0:
        raise TensorError(f"{what} has shape {list(array.shape)}; expected [N, 28, 28] with N >= 1")
    if array.dtype == np.uint8:
        return array
    if not np.isfinite(array).all():
        raise TensorError(f"{what} holds NaN or infinite values; pixels must be numbers 0-255")
    if array.size and (array.min() < 0 or array.max() > 255):
        raise TensorError(f"{what} holds values outside 0-255; send raw pixels (background 0, ink 255)")
    return array.astype(np.uint8 if array.dtype.kind in "iu" else np.float32, copy=False)


def numeric_array(value: Any, what: str) -> np.ndarray:
    """A rectangular nested JSON list of numbers, as NumPy reads it (int64 or float64; bools and strings refused)."""
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError):  # ragged nesting, or integers beyond 64 bits
        raise TensorError(f"{what} is not a rectangular array of numbers") from None
    if array.dtype.kind not in "iuf":
        raise TensorError(f"{what} must hold numbers only")
    return array


def decode_b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise TensorError(f"{what}: the 'b64' value must be a string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise TensorError(f"{what}: malformed base64") from None
    if not data:
        raise TensorError(f"{what}: the base64 string is empty")
    return data


# --- TensorFlow Serving (REST v1) -----------------------------------------------------------------------------


def tfserving_item(value: Any, input_name: str, where: str) -> Item:
    """One instance: 28x28 pixels or {"b64": "<image file>"}, either maybe wrapped once as {"<input_name>": ...}."""
    if isinstance(value, dict) and set(value) == {input_name}:
        value = value[input_name]
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            return decode_b64(value["b64"], where)
        raise TensorError(
            f'{where}: {sorted(value)} is not an image; send 28x28 pixels or {{"b64": ...}}, named '
            f"'{input_name}' at most once"
        )
    array = numeric_array(value, where)
    if array.shape != (IMAGE_SIDE, IMAGE_SIDE):
        raise TensorError(f"{where} has shape {list(array.shape)}; each image must be 28x28 pixels")
    return check_pixels(array[None], where)[0]


def tfserving_items(body: Any, input_name: str) -> tuple[Decoded, str]:
    """The items of a :predict body and its format: 'row' (instances) or 'columnar' (inputs)."""
    if not isinstance(body, dict):
        raise TensorError("the request body must be a JSON object with 'instances' or 'inputs'")
    if ("instances" in body) == ("inputs" in body):
        raise TensorError("send exactly one of 'instances' (row format) or 'inputs' (columnar format)")
    if "instances" in body:
        key, value = "instances", body["instances"]
    else:
        key, value = "inputs", body["inputs"]
        if isinstance(value, dict) and set(value) != {"b64"}:  # the named form {"images": tensor}
            if set(value) != {input_name}:
                raise TensorError(f"'inputs' names {sorted(value)}; the model's only input is '{input_name}'")
            value = value[input_name]
    if not isinstance(value, list) or not value:
        raise TensorError(f"'{key}' must be a non-empty list of images (each 28x28 pixels or {{\"b64\": ...}})")
    layout = "row" if key == "instances" else "columnar"
    if all(isinstance(item, list) for item in value):  # pixels only: read as one tensor
        with suppress(TensorError):  # a bad image is named by the reading one by one below
            return check_pixels(numeric_array(value, f"'{key}'"), f"'{key}'"), layout
    items = [tfserving_item(item, input_name, f"{key}[{index}]") for index, item in enumerate(value)]
    return items, layout


# --- Open Inference Protocol (KServe V2), JSON and binary tensor data ------------------------------------------


def v2_shape(spec: dict[str, Any], name: str) -> list[int]:
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise TensorError(f"input '{name}': 'shape' must be a list of non-negative integers")
    return shape


def split_bytes_elements(raw: bytes, count: int, name: str) -> list[bytes]:
    """BYTES binary data: each element is a 4-byte little-endian length followed by that many bytes."""
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise TensorError(f"input '{name}': BYTES data ends inside an element's length prefix")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise TensorError(f"input '{name}': a BYTES element claims {length} bytes but the data ends first")
        elements.append(raw[offset : offset + length])
        offset += length
    if len(elements) != count:
        raise TensorError(f"input '{name}': {len(elements)} BYTES elements sent but the shape holds {count}")
    return elements


def flatten_json(data: Any, name: str) -> list[Any]:
    """`data` may be flat (row-major) or nested as the shape; either way, its elements in row-major order."""
    if not isinstance(data, list):
        raise TensorError(f"input '{name}': 'data' must be a list")
    flat: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:  # iterative, so a deeply nested body cannot exhaust the recursion limit
        for element in stack[-1]:
            if isinstance(element, list):
                stack.append(iter(element))
                break
            flat.append(element)
        else:
            stack.pop()
    return flat


def v2_items(spec: Any, raw: bytes | None, input_name: str) -> Decoded:
    """One request input (JSON data, or `raw` binary data) -> images. UINT8/FP32 [N, 28, 28] or BYTES [N] / [N, 1]."""
    if not isinstance(spec, dict):
        raise TensorError("each entry of 'inputs' must be an object with name, shape, datatype and data")
    name = spec.get("name")
    if name != input_name:
        raise TensorError(f"unexpected input {name!r}; the model's only input is '{input_name}'")
    datatype = spec.get("datatype")
    if datatype not in V2_ACCEPTED:
        raise TensorError(f"input '{name}': datatype {datatype!r} is not accepted; use one of {list(V2_ACCEPTED)}")
    shape = v2_shape(spec, name)
    count = math.prod(shape)

    if datatype == "BYTES":
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1) or count == 0:
            raise TensorError(f"input '{name}': BYTES shape {shape}; expected [N] or [N, 1] with N >= 1")
        if raw is not None:
            return list(split_bytes_elements(raw, count, name))
        elements = flatten_json(spec.get("data"), name)
        if len(elements) != count:
            raise TensorError(f"input '{name}': {len(elements)} elements in 'data' but the shape holds {count}")
        return [decode_b64(text, f"input '{name}'[{index}]") for index, text in enumerate(elements)]

    if len(shape) != 3 or shape[1:] != [IMAGE_SIDE, IMAGE_SIDE] or shape[0] == 0:
        raise TensorError(f"input '{name}': shape {shape}; expected [N, 28, 28] with N >= 1")
    what = f"input '{name}'"
    if raw is not None:
        dtype = V2_NUMERIC[datatype]
        if len(raw) != count * dtype.itemsize:
            raise TensorError(
                f"{what}: {len(raw)} bytes of binary data, but {datatype} {shape} takes {count * dtype.itemsize}"
            )
        return check_pixels(np.frombuffer(raw, dtype=dtype).reshape(shape), what)
    array = json_values(spec.get("data"), count, name)
    if datatype == "UINT8" and array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
        raise TensorError(f"{what}: UINT8 data must be whole numbers 0-255")
    return check_pixels(array.reshape(shape), what)


def json_values(data: Any, count: int, name: str) -> np.ndarray:
    """The numbers of a JSON `data` list, nested as the shape or flat, read by NumPy in one call; data nested any
    other way is flattened first."""
    if not isinstance(data, list):
        raise TensorError(f"input '{name}': 'data' must be a list")
    try:
        array = numeric_array(data, f"input '{name}'")
    except TensorError:
        array = numeric_array(flatten_json(data, name), f"input '{name}'")
    if array.size != count:
        raise TensorError(f"input '{name}': {array.size} values in 'data' but the shape holds {count}")
    return array


def split_binary_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes | None]:
    """The JSON part and the binary part of an infer body (binary only with Inference-Header-Content-Length)."""
    if header_length is None:
        return body, None
    text = header_length.strip()
    if not text.isdecimal():  # not isdigit, which also takes "²", a digit int() refuses
        raise TensorError("Inference-Header-Content-Length must be a whole number of bytes")
    length = int(text)
    if length == 0 or length > len(body):
        raise TensorError(
            f"Inference-Header-Content-Length is {length} but the body has {len(body)} bytes; "
            "it must be the length of the JSON part, which starts the body"
        )
    return body[:length], body[length:]


def binary_sizes(inputs: Sequence[Any], binary: bytes | None) -> list[bytes | None]:
    """Slice the binary part among the inputs that declare `binary_data_size`, in order; it must add up exactly."""
    slices: list[bytes | None] = []
    offset = 0
    for spec in inputs:
        parameters = spec.get("parameters") if isinstance(spec, dict) else None
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None:
            slices.append(None)
            continue
        if binary is None:
            raise TensorError(
                "an input declares binary_data_size but the request has no Inference-Header-Content-Length header"
            )
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise TensorError("binary_data_size must be a non-negative integer")
        if offset + size > len(binary):
            raise TensorError(
                f"the inputs declare at least {offset + size} bytes of binary data but only {len(binary)} follow "
                "the JSON header"
            )
        slices.append(binary[offset : offset + size])
        offset += size
    if binary is not None and offset != len(binary):
        raise TensorError(
            f"{len(binary)} bytes follow the JSON header but the inputs' binary_data_size values add up to {offset}"
        )
    return slices


async def to_images(decoded: Decoded, preprocess: Callable[[bytes], Awaitable[np.ndarray]]) -> np.ndarray:
    """The images as one array [N, 28, 28]; encoded images go through `preprocess` (as /predict uploads do)."""
    if isinstance(decoded, np.ndarray):
        return decoded
    arrays = []
    for index, item in enumerate(decoded):
        if isinstance(item, bytes):
            try:
                arrays.append(await preprocess(item))
            except ValueError as error:  # name the image at fault; the error keeps its type and so its status
                raise type(error)(f"image #{index + 1}: {error}") from None
        else:
            arrays.append(item)
    return np.stack(arrays).astype(np.float32, copy=False)
