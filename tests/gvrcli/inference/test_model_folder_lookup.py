"""``--model FOLDER``: the folder ``gvr export`` wrote, whatever its files are named.

The step graph is found by its gvr manifest, not by its name; its companions (condition and text
graphs, OpenVINO .bin, external data) are the ones its manifest names. A latent-cascade bundle
keeps its ``denoiser.*`` rule. Several models in one folder, or none, is exit 2 naming them or it.
"""

from __future__ import annotations

import subprocess

import onnx
import pytest
from onnx import helper
from tests.clips import read_video, write_video
from tests.fake_model import build_fake_onnx

from gvrcli.errors import ModelError
from gvrcli.inference.modelfile import resolve_model_path


def test_a_folder_with_one_model_resolves_to_its_step_graph_whatever_its_name(tmp_path):
    step = build_fake_onnx(tmp_path / "m" / "my-upscaler.onnx")  # and my-upscaler.condition.onnx beside it
    (tmp_path / "m" / "notes.onnx").write_bytes(b"not a graph")  # unreadable: not a model
    assert resolve_model_path(tmp_path / "m") == step


def test_two_models_in_a_folder_are_refused_naming_both(tmp_path):
    build_fake_onnx(tmp_path / "m" / "a.onnx")
    build_fake_onnx(tmp_path / "m" / "b.onnx")
    with pytest.raises(ModelError, match=r"holds 2 gvr models \(a\.onnx, b\.onnx\); name one with --model") as e:
        resolve_model_path(tmp_path / "m")
    assert e.value.exit_code == 2


def test_a_folder_without_a_gvr_model_is_refused_naming_it(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    plain = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", 1, [1])], [helper.make_tensor_value_info("y", 1, [1])]))
    onnx.save(plain, str(folder / "other.onnx"))  # an ONNX graph, but no gvr manifest
    with pytest.raises(ModelError, match=f"model {folder}: no gvr model in this folder"):
        resolve_model_path(folder)


def test_the_cli_refuses_an_ambiguous_folder_in_one_line(gvr_cmd, cli_env, tmp_path):
    build_fake_onnx(tmp_path / "m" / "a.onnx")
    build_fake_onnx(tmp_path / "m" / "b.onnx")
    clip = write_video(tmp_path / "in" / "clip.mp4", frames=2)
    done = subprocess.run([*gvr_cmd, "upscale", "--model", str(tmp_path / "m"), str(clip), str(tmp_path / "out")], env=cli_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "a.onnx, b.onnx" in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_openvino_folder_runs_by_its_folder(gvr_cmd, cli_env, tmp_path, fake_model):
    """The fake model as OpenVINO IR in a folder (a step .xml/.bin and its condition .xml/.bin)."""
    import json

    import openvino as ov
    from models.manifest import MANIFEST_KEY, graph_sha256
    from tests.fake_model import fake_manifest

    folder = tmp_path / "ir"
    folder.mkdir()
    condition = folder / "whatever.condition.xml"
    ov.save_model(ov.convert_model(str(fake_model.with_name("fake-x2.condition.onnx"))), str(condition))
    model = ov.convert_model(str(fake_model))
    model.set_rt_info(json.dumps(fake_manifest(graphs={"condition": {"file": condition.name, "sha256": graph_sha256(condition)}})), MANIFEST_KEY)
    ov.save_model(model, str(folder / "whatever.xml"))
    assert resolve_model_path(folder) == folder / "whatever.xml"
    clip = write_video(tmp_path / "in" / "clip.mp4", frames=3)
    done = subprocess.run([*gvr_cmd, "upscale", "--model", str(folder), str(clip), str(tmp_path / "out")], env=cli_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert read_video(tmp_path / "out" / "clip.mp4")["width"] == 2 * read_video(clip)["width"]
