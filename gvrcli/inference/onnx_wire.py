"""The few fields of an ONNX file the runtime checks before any runtime sees it, read straight
from the protobuf wire format.

Why not ``onnx.load``: importing ``onnx`` costs ~0.5 s of every ``gvr upscale`` (its ``ml_dtypes``
extension), a tenth of a short clip's whole run, for four facts: the gvr manifest (a
``metadata_props`` entry), the graph's input and output names, whether it has nodes, and every
tensor's external-data entries (checked to stay inside the model's folder). Those are stable
field numbers of ``onnx.proto`` (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
SparseTensorProto, ValueInfoProto, StringStringEntryProto), and this walks only them, skipping
everything else (weights included) by its length without copying it. ``onnx`` itself stays the
exporter's and the tests' tool.

Protobuf merges a message field that occurs twice, and concatenates repeated fields: so does
this (every occurrence of a graph or tensor is walked), so a forged file cannot hide a tensor
from the check in a second copy of a field.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from pathlib import Path

# ONNX field numbers (onnx/onnx.proto).
MODEL_GRAPH, MODEL_METADATA = 7, 14
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_INPUT, GRAPH_OUTPUT, GRAPH_SPARSE_INITIALIZER = 1, 5, 11, 12, 15
NODE_ATTRIBUTE = 5
ATTR_T, ATTR_G, ATTR_TENSORS, ATTR_GRAPHS, ATTR_SPARSE_TENSOR, ATTR_SPARSE_TENSORS = 5, 6, 10, 11, 22, 23
SPARSE_VALUES, SPARSE_INDICES = 1, 2
TENSOR_NAME, TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 8, 13, 14
TENSOR_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
MAX_DEPTH = 64  # nested subgraphs; a deeper file is refused, not a RecursionError

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """Not a well-formed protobuf message."""


@dataclass
class Tensor:
    name: str = ""
    external: bool = False  # data_location == EXTERNAL
    external_data: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class OnnxSummary:
    metadata: dict[str, str] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    nodes: int = 0
    tensors: list[Tensor] = field(default_factory=list)  # every tensor, at any depth


def read_onnx_summary(path: Path) -> OnnxSummary:
    """The summary of the ONNX file at ``path``; WireError if it is not a well-formed ModelProto."""
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            raise WireError("empty file")
        # Mapped, not read: weights are skipped by length, never copied (an inline-weights file
        # can be up to 2 GB). The map is left to the garbage collector (views of it live on in the
        # walk's frames until it is done). Like OpenVINO's own mapped weights, it assumes nobody
        # truncates the file in place meanwhile (replacing it by rename, as gvr export does, is safe).
        view = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
    summary = OnnxSummary()
    for number, value in _fields(view):
        if number == MODEL_GRAPH:
            _graph(_message(value), summary, 0)
        elif number == MODEL_METADATA:
            key, text = _entry(_message(value))
            summary.metadata[key] = text
    return summary


def _fields(buf: memoryview):
    """(field number, value) of each field: an int for numeric wire types, a memoryview for
    length-delimited ones."""
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise WireError("field number 0")
        if wire == VARINT:
            value, pos = _varint(buf, pos)
        elif wire == LENGTH:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise WireError("truncated")
            value, pos = buf[pos : pos + size], pos + size
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            if pos + size > end:
                raise WireError("truncated")
            value, pos = int.from_bytes(buf[pos : pos + size], "little"), pos + size
        else:
            raise WireError(f"wire type {wire}")
        yield number, value


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _message(value) -> memoryview:
    if not isinstance(value, memoryview):
        raise WireError("a message field with a numeric wire type")
    return value


def _text(value) -> str:
    return bytes(_message(value)).decode("utf-8", errors="strict")


def _entry(buf: memoryview) -> tuple[str, str]:
    key = text = ""
    for number, value in _fields(buf):
        if number == 1:
            key = _text(value)
        elif number == 2:
            text = _text(value)
    return key, text


def _graph(buf: memoryview, summary: OnnxSummary, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise WireError("subgraphs nested too deep")
    top = depth == 0
    for number, value in _fields(buf):
        if number == GRAPH_NODE:
            summary.nodes += top
            for attr_number, attr in _fields(_message(value)):
                if attr_number == NODE_ATTRIBUTE:
                    _attribute(_message(attr), summary, depth)
        elif number == GRAPH_INITIALIZER:
            summary.tensors.append(_tensor(_message(value)))
        elif number == GRAPH_SPARSE_INITIALIZER:
            _sparse(_message(value), summary)
        elif top and number in (GRAPH_INPUT, GRAPH_OUTPUT):
            name = next((_text(v) for n, v in _fields(_message(value)) if n == 1), "")
            (summary.inputs if number == GRAPH_INPUT else summary.outputs).append(name)


def _attribute(buf: memoryview, summary: OnnxSummary, depth: int) -> None:
    for number, value in _fields(buf):
        if number in (ATTR_T, ATTR_TENSORS):
            summary.tensors.append(_tensor(_message(value)))
        elif number in (ATTR_G, ATTR_GRAPHS):
            _graph(_message(value), summary, depth + 1)
        elif number in (ATTR_SPARSE_TENSOR, ATTR_SPARSE_TENSORS):
            _sparse(_message(value), summary)


def _sparse(buf: memoryview, summary: OnnxSummary) -> None:
    for number, value in _fields(buf):
        if number in (SPARSE_VALUES, SPARSE_INDICES):
            summary.tensors.append(_tensor(_message(value)))


def _tensor(buf: memoryview) -> Tensor:
    tensor = Tensor()
    for number, value in _fields(buf):
        if number == TENSOR_NAME:
            tensor.name = _text(value)
        elif number == TENSOR_EXTERNAL_DATA:
            tensor.external_data.append(_entry(_message(value)))
        elif number == TENSOR_DATA_LOCATION:
            tensor.external = value == TENSOR_EXTERNAL
    return tensor
