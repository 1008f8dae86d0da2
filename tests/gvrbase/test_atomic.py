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


def test_written_publishes_one_file_with_the_usual_mode_and_no_partial(tmp_path):
    out = tmp_path / "ckpt.safetensors"
    out.write_bytes(b"old")
    with atomic.written(out) as partial:
        assert partial.parent == tmp_path and atomic.is_reserved_name(partial.name)
        assert out.read_bytes() == b"old", "the old file stays whole until the new one is complete"
        partial.write_bytes(b"new")
    assert out.read_bytes() == b"new"
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.safetensors"]


def test_written_removes_its_partial_when_the_writer_fails(tmp_path):
    out = tmp_path / "speed.json"
    with pytest.raises(OSError), atomic.written(out) as partial:
        partial.write_text("{half")
        raise OSError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_written_replaces_a_link_at_the_destination_instead_of_following_it(tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text("keep")
    out = tmp_path / "cache.json"
    out.symlink_to(target)
    with atomic.written(out) as partial:
        partial.write_text("new")
    assert target.read_text() == "keep" and not out.is_symlink() and out.read_text() == "new"
