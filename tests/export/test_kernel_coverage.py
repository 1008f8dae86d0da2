"""Every node of the GPU artefacts has a kernel in ONNX Runtime's CUDA provider, checked offline
against the pinned release's kernel table (``export/ort_cuda_kernels.json``, issue 25), and every
``Attention`` node meets the Flash / memory-efficient kernels' conditions.

A strict GPU session (gvr's) refuses a graph with a node the CUDA provider cannot run; without a
GPU here, the table is what tells. The check must also fail where it should: a planted bf16 ``Pad``
(what the bf16 exports had before issue 25) is reported, and a table made for another ONNX Runtime
fails with "regenerate the table".
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from export.kernel_coverage import (
    TableVersionError, attention_problems, check_graph, check_version, load_table, summary, uncovered, unimplemented,
)
from export.verify import graph_files
from tools.ort_kernel_table import parse_markdown

ROOT = Path(__file__).resolve().parents[2]
# The checked-in table holds the rows of the ops gvr's graphs use; a graph with a new op needs its rows.
NEW_OP = "add its rows: regenerate the table from the release's OperatorKernels.md (docs/gpu-check.md)"


def pad_model(dtype: int) -> onnx.ModelProto:
    """x (fp32) -> Cast(dtype) -> Pad -> Cast(fp32): the window padding of a half-precision graph."""
    nodes = [
        helper.make_node("Cast", ["x"], ["h"], to=dtype, name="to_half"),
        helper.make_node("Pad", ["h", "pads"], ["p"], name="window_pad"),
        helper.make_node("Cast", ["p"], ["y"], to=TensorProto.FLOAT, name="to_fp32"),
    ]
    graph = helper.make_graph(
        nodes, "planted",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("pads", TensorProto.INT64, [6], [0, 1, 0, 0, 2, 0])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])


def installed_ort() -> str:
    from importlib.metadata import version

    return version("onnxruntime-gpu" if sys.platform in ("linux", "win32") else "onnxruntime")


# --------------------------------------------------------------------------------------------------
# The table: the pinned release's, and the check bites
# --------------------------------------------------------------------------------------------------


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Python 3.10 gets onnxruntime < 1.25, which has no kernel table (pyproject.toml)")
def test_the_table_is_for_the_installed_and_pinned_onnx_runtime():
    table = load_table()
    check_version(table)  # raises "regenerate the table" on another version
    assert table["onnxruntime"] == installed_ort()
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {m.group(1) for d in deps if (m := re.match(r"onnxruntime(?:-gpu)?==([\d.]+);", d))}
    assert pins == {table["onnxruntime"]}, "pyproject.toml pins what CI installs: the table's version"


def test_a_table_for_another_onnx_runtime_fails_with_regenerate():
    with pytest.raises(TableVersionError, match="regenerate the table"):
        check_version({**load_table(), "onnxruntime": "1.30.0"}, installed="1.31.1")


def test_a_planted_bf16_pad_is_reported_and_the_same_pad_in_fp16_is_not():
    table = load_table()
    missing = uncovered(pad_model(TensorProto.BFLOAT16), table)
    assert [(m.op, m.name) for m in missing] == [("Pad", "window_pad")]
    assert "bfloat16" in missing[0].types and "Pad (bfloat16, int64)" == summary(missing)
    assert uncovered(pad_model(TensorProto.FLOAT16), table) == []


def test_the_markdown_parser_reads_ranges_continuations_and_fixed_types():
    md = """## Operators implemented by CUDAExecutionProvider

| Op Name | Parameters | OpSet Version | Types Supported |
|---------|------------|---------------|-----------------|
|**Operator Domain:** *ai.onnx*||||
|Pad|*in* data:**T**<br> *in* pads:**tensor(int64)**<br> *out* output:**T**|18+|**T** = tensor(bool), tensor(float16)|
|||[13, 17]|**T** = tensor(float)|
|Cast|*in* input:**T1**|23|**T1** = tensor(bfloat16)<br/> **T2** = tensor(float)|
| |
|**Operator Domain:** *com.microsoft*||||
|Gelu|*in* X:**T**|1+|**T** = tensor(bfloat16)|

## Operators implemented by DmlExecutionProvider
|**Operator Domain:** *ai.onnx*||||
|Pad|*in* data:**T**|1+|**T** = tensor(bfloat16)|
"""
    assert parse_markdown(md) == {
        "ai.onnx": {"Pad": [[18, None, ["bool", "float16", "int64"]], [13, 17, ["float", "int64"]]], "Cast": [[23, 23, ["bfloat16", "float"]]]},
        "com.microsoft": {"Gelu": [[1, None, ["bfloat16"]]]},
    }


def test_attention_conditions_catch_a_mask_and_unequal_head_sizes():
    def attention(q, k, v, mask: bool):
        inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT16, [1, 2, 16, d]) for n, d in (("q", q), ("k", k), ("v", v))]
        names = ["q", "k", "v"] + (["m"] if mask else [])
        if mask:
            inputs.append(helper.make_tensor_value_info("m", TensorProto.FLOAT16, [1, 2, 16, 16]))
        node = helper.make_node("Attention", names, ["y"], name="att")
        graph = helper.make_graph([node], "a", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])

    assert attention_problems(attention(40, 40, 40, False)) == []
    assert any("head sizes" in p for p in attention_problems(attention(33, 33, 32, False)))
    assert any("4 inputs" in p for p in attention_problems(attention(40, 40, 40, True)))
    assert any("head sizes" in p for p in attention_problems(attention(264, 264, 264, False)))


# --------------------------------------------------------------------------------------------------
# The exported graphs
# --------------------------------------------------------------------------------------------------


def assert_covered(export_report, half: bool = True):
    table = load_table()
    for role, path in graph_files("onnx", export_report.main_file).items():
        missing, attention = check_graph(path, table)
        assert missing == [], f"{role} graph: no CUDA kernel for {summary(missing)} (an op the table has no row for at all: {NEW_OP})"
        if half and role == "step":
            assert attention == [], attention
            assert any(n.op_type == "Attention" for n in onnx.load(str(path)).graph.node)


def test_fp16_export_has_a_cuda_kernel_for_every_node_and_flash_attention(fp16_onnx):
    assert_covered(fp16_onnx)


def test_bf16_export_has_a_cuda_kernel_for_every_node_and_flash_attention(bf16_onnx):
    assert_covered(bf16_onnx)
    step = onnx.load(str(bf16_onnx.main_file))
    pads = [n for n in step.graph.node if n.op_type == "Pad"]
    assert pads, "the window padding is still there, in fp32 between Casts"


def test_fp32_fused_attention_misses_the_fast_kernels(dynamic_onnx):
    """The CPU default (``fused``: q/k d+1, v d) is covered but takes the unfused CUDA path: the
    check says so, which is why GPU artefacts are half precision with ``aligned`` attention."""
    missing, attention = check_graph(dynamic_onnx.main_file)
    assert missing == []
    assert attention and all("head sizes" in p or "computes in float" in p for p in attention)


def test_a_cpu_session_of_the_bf16_graph_names_only_ops_the_check_lists(bf16_onnx):
    """ONNX Runtime's CPU provider lacks most bf16 kernels; the node-by-node check lists them, and
    a session of the whole graph (which stops at the first) names one of those, not another."""
    import onnxruntime as ort

    step = onnx.load(str(bf16_onnx.main_file))
    listed = {m.op for m in unimplemented(step)}
    assert "Pad" not in listed and {"MatMul", "Attention"} <= listed
    with pytest.raises(Exception, match="NOT_IMPLEMENTED") as refused:
        ort.InferenceSession(str(bf16_onnx.main_file), providers=["CPUExecutionProvider"])
    named = re.search(r"implementation for (\w+)\(", str(refused.value)).group(1)
    assert named in listed


def test_verify_of_a_bf16_export_names_the_ops_the_cpu_cannot_run(bf16_onnx, half_model):
    from export.verify import backends_for

    backends, skipped = backends_for("onnx", bf16_onnx.main_file, precision="bf16")
    assert "MatMul (bfloat16)" in skipped["onnxruntime-cpu"] and "Pad" not in skipped["onnxruntime-cpu"]
    condition = graph_files("onnx", bf16_onnx.main_file)["condition"]  # fp32 inside: the CPU runs it
    backends, skipped = backends_for("onnx", condition, precision="bf16")
    assert "onnxruntime-cpu" in [b.name for b in backends] and "onnxruntime-cpu" not in skipped


def test_bundle_vae_and_denoiser_graphs_have_cuda_kernels(onnx_bundle):
    """The VAE graphs compute in fp32 in every bundle (an fp16 bundle stores fp16 weights + Casts)."""
    folder, _ = onnx_bundle
    table = load_table()
    graphs = sorted(Path(folder).rglob("*.onnx"))
    assert len(graphs) >= 4
    for path in graphs:
        missing = uncovered(onnx.load(str(path), load_external_data=False), table)
        assert missing == [], f"{path.name}: no CUDA kernel for {summary(missing)} (an op the table has no row for at all: {NEW_OP})"


@pytest.mark.slow
@pytest.mark.parametrize("preset, depth", [("tiny", None), ("base", 1)])
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_preset_half_exports_have_cuda_kernels(preset, depth, precision, tmp_path):
    import models
    from export import export_model
    from models.checkpoint import init_random_

    model = init_random_(models.build_model(preset, scale=2, **({"depth": depth} if depth else {})), seed=0)
    assert_covered(export_model("onnx", tmp_path / f"{preset}.onnx", model=model, precision=precision))


def test_pad_keeps_bf16_values_exactly():
    """bf16 padding runs in fp32 between Casts: bf16 -> fp32 -> bf16 is exact, so the values are the same."""
    import torch
    import torch.nn.functional as F

    from models.attention import pad

    x = torch.randn(1, 2, 3, 4).to(torch.bfloat16)
    for mode in ("constant", "replicate"):
        got = pad(x, (0, 2, 1, 0), mode=mode)
        assert got.dtype == torch.bfloat16
        assert torch.equal(got, F.pad(x.float(), (0, 2, 1, 0), mode=mode).to(torch.bfloat16))
    assert np.array_equal(pad(x.float(), (1, 1)).numpy(), F.pad(x.float(), (1, 1)).numpy())
