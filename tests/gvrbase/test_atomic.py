"""Atomic outputs (``gvrbase.atomic``), shared by ``gvr upscale`` and ``gvr export``: all or
nothing, nothing left behind, an existing output refused or replaced whole, links never followed."""

from __future__ import annotations

import os

import pytest

from gvrbase import atomic


def test_staged_files_land_together_and_the_stage_goes(tmp_path):
    out = tmp_path / "models"
    with atomic.staged(out) as stage:
        (stage / "m.onnx").write_bytes(b"graph")
        (stage / "m.condition.onnx").write_bytes(b"companion")
        assert not (out / "m.onnx").exists(), "nothing is visible before the block completes"
    assert sorted(p.name for p in out.iterdir()) == ["m.condition.onnx", "m.onnx"]
    assert (out / "m.onnx").read_bytes() == b"graph"


def test_a_failure_inside_the_block_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic.staged(tmp_path) as stage:
        (stage / "m.onnx").write_bytes(b"half")
        raise RuntimeError("converter failed")
    assert list(tmp_path.iterdir()) == []


def test_one_existing_file_refuses_them_all_unless_replacing(tmp_path):
    (tmp_path / "b.xml").write_text("precious")
    with pytest.raises(FileExistsError) as err, atomic.staged(tmp_path) as stage:
        (stage / "a.xml").write_text("new")
        (stage / "b.xml").write_text("new")
    assert err.value.filename == str(tmp_path / "b.xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.xml"] and (tmp_path / "b.xml").read_text() == "precious"
    with atomic.staged(tmp_path, replace=True) as stage:
        (stage / "b.xml").write_text("new")
    assert (tmp_path / "b.xml").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["b.xml"]


def test_a_link_at_the_destination_is_replaced_not_written_through(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not gvr's")
    (tmp_path / "out").mkdir()
    os.symlink(elsewhere / "keep.txt", tmp_path / "out" / "m.onnx")
    os.symlink(elsewhere, tmp_path / "out" / "ir")
    with atomic.staged(tmp_path / "out", replace=True) as stage:
        (stage / "m.onnx").write_bytes(b"graph")
    with atomic.staged_folder(tmp_path / "out" / "ir", replace=True) as folder:
        (folder / "m.xml").write_text("ir")
    assert not (tmp_path / "out" / "m.onnx").is_symlink() and not (tmp_path / "out" / "ir").is_symlink()
    assert os.listdir(elsewhere) == ["keep.txt"] and (elsewhere / "keep.txt").read_text() == "not gvr's"


def test_a_folder_is_swapped_whole_and_the_old_one_removed(tmp_path):
    out = tmp_path / "m_openvino"
    out.mkdir()
    (out / "old.xml").write_text("old")
    with pytest.raises(FileExistsError), atomic.staged_folder(out) as folder:
        (folder / "m.xml").write_text("new")
    assert os.listdir(out) == ["old.xml"]
    with atomic.staged_folder(out, replace=True) as folder:
        (folder / "m.xml").write_text("new")
        (folder / "sub").mkdir()
    assert sorted(os.listdir(out)) == ["m.xml", "sub"] and os.listdir(tmp_path) == ["m_openvino"]
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~_umask()), "a published folder has the usual mode"


def test_publish_renames_a_finished_partial(tmp_path):
    out = tmp_path / "clip.mp4"
    partial = atomic.partial_path(out, "0123456789abcdef")
    partial.write_bytes(b"video")
    atomic.publish(partial, out)
    assert out.read_bytes() == b"video" and not partial.exists()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
