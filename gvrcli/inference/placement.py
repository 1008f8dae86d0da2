"""Which nodes ONNX Runtime placed on the CPU instead of the GPU, by name, from its own log.

A GPU session is created strict (``session.disable_cpu_ep_fallback``): a node the GPU provider
cannot run fails the session instead of quietly running on the CPU with two device copies around
it. ONNX Runtime's refusal does not say which node, so on refusal gvr creates the session once
more with fallback allowed and verbose logging, and reads ORT's placement report
(``VerifyEachNodeIsAssignedToAnEp``: "Node(s) placed on [CPUExecutionProvider]. Number of nodes:
N" and one "OpType (node name)" line per node) from the process's stderr.

Not every CPU node is a fallback: on dynamic shapes the CUDA provider hands integer shape
arithmetic (Shape -> Gather -> Concat -> the shape input of a Reshape) to the CPU on purpose
(``GetCpuPreferredNodes``): those values are a few int64s the CPU computes without a device
round trip. A CPU node whose outputs are all integer or boolean is such shape math and allowed;
one with a float output (or one ORT made and the graph does not name) is a real fallback: the
session is refused naming those nodes.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

PLACED = re.compile(r"(?:Node\(s\)|All nodes) placed on \[(\w+)\]\. Number of nodes: (\d+)")
NODE = re.compile(r"VerifyEachNodeIsAssignedToAnEp\]\s+(\S+) \((.*)\)\s*$")
CPU = "CPUExecutionProvider"
# ONNX TensorProto element types of shape arithmetic: INT32, INT64, BOOL (and the small ints).
_SHAPE_TYPES = {2, 3, 4, 5, 6, 7, 9, 12, 13}


def parse_placement(log: str) -> dict[str, list[tuple[str, str]]]:
    """provider -> [(op type, node name)] from ORT's verbose session log. A provider that took
    the whole graph is listed with no nodes ("All nodes placed on [...]")."""
    placed: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in log.splitlines():
        header = PLACED.search(line)
        if header:
            current = header.group(1)
            placed.setdefault(current, [])
            if "All nodes placed" in line:  # no node lines follow
                current = None
            continue
        node = NODE.search(line)
        if node and current is not None:
            placed[current].append((node.group(1), node.group(2)))
    return placed


@contextlib.contextmanager
def native_stderr():
    """Capture what native code writes to file descriptor 2 (ORT's log sink) while the block runs;
    yields a function returning it as text."""
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: (sink.flush(), sink.seek(0), sink.read().decode("utf-8", "replace"))[-1]
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def output_types(path: Path) -> dict[str, list[int]]:
    """node name -> element types of its outputs, by ONNX shape inference on the graph file."""
    import onnx

    proto = onnx.shape_inference.infer_shapes(onnx.load(str(path), load_external_data=False))
    g = proto.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*g.input, *g.output, *g.value_info)}
    return {n.name: [types.get(o, 0) for o in n.output] for n in g.node if n.name}


def classify(cpu: list[tuple[str, str]], types: dict[str, list[int]]) -> tuple[list, list]:
    """(shape-arithmetic nodes, compute nodes) of the nodes ORT placed on the CPU."""
    shape, compute = [], []
    for op_type, name in cpu:
        outs = types.get(name)
        (shape if outs and all(t in _SHAPE_TYPES for t in outs) else compute).append((op_type, name))
    return shape, compute


def cpu_nodes(make_session, path: Path) -> tuple[list, list]:
    """Create a fallback-allowed session with ``make_session(verbose=True)`` and return its
    (shape-arithmetic nodes, compute nodes) on the CPU provider."""
    with native_stderr() as read:
        make_session(verbose=True)
        log = read()
    return classify(parse_placement(log).get(CPU, []), output_types(path))


def explain_fallback(path: Path, provider: str, nodes: list[tuple[str, str]]) -> str:
    """One line naming the nodes the GPU provider cannot run."""
    names = ", ".join(f"{op} ({name or 'unnamed'})" for op, name in nodes[:8]) + (f" and {len(nodes) - 8} more" if len(nodes) > 8 else "")
    return (
        f"model {path}: {provider} cannot run {len(nodes)} node(s), which would fall back to the CPU: {names}; "
        "re-export it for the GPU (gvr export --precision fp16, or fp32 --attention aligned) or run with --backend ort-cpu / openvino"
    )
