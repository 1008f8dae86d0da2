"""Finding inputs and naming outputs: tree mirrored, globs, symlinks, never into an input dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gvrcli.batch.options import UpscaleOptions
from gvrcli.batch.planning import plan_jobs
from gvrcli.farm.discovery import check_output_dir, find_candidates
from gvrcli.errors import UsageError
from gvrcli.media.formats import get_codec, output_relative_path


def touch(root: Path, *names: str) -> None:
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def rels(candidates):
    return [c.relative.as_posix() for c in candidates]


def test_walk_is_recursive_sorted_and_skips_hidden(tmp_path):
    touch(tmp_path, "b.mp4", "a.mov", "shots/s1/c.mkv", ".hidden.mp4", ".cache/d.mp4")
    assert rels(find_candidates([tmp_path])) == ["a.mov", "b.mp4", "shots/s1/c.mkv"]
    assert rels(find_candidates([tmp_path], recursive=False)) == ["a.mov", "b.mp4"]


def test_walk_passes_over_prompt_sidecars(tmp_path):
    touch(tmp_path, "a.mp4", "a.text.safetensors", "shots/b.mp4", "shots/b.text.safetensors", "latents.safetensors")
    assert rels(find_candidates([tmp_path])) == ["a.mp4", "latents.safetensors", "shots/b.mp4"]


def test_include_and_exclude_globs_match_at_any_depth(tmp_path):
    touch(tmp_path, "a.mp4", "a.mov", "shots/b.mp4", "shots/proxy/c.mp4")
    assert rels(find_candidates([tmp_path], include=("*.mp4",))) == ["a.mp4", "shots/b.mp4", "shots/proxy/c.mp4"]
    assert rels(find_candidates([tmp_path], include=("*.mp4",), exclude=("proxy/*",))) == ["a.mp4", "shots/b.mp4"]


def test_explicit_files_land_at_the_output_root(tmp_path):
    touch(tmp_path, "deep/x/clip.mp4")
    (c,) = find_candidates([tmp_path / "deep/x/clip.mp4"])
    assert c.explicit and c.relative == Path("clip.mp4")


def test_symlinks_are_not_followed_unless_asked(tmp_path):
    root, outside = tmp_path / "in", tmp_path / "outside"
    touch(root, "a.mp4")
    touch(outside, "secret.mp4")
    os.symlink(outside, root / "link_dir")
    os.symlink(outside / "secret.mp4", root / "link.mp4")
    os.symlink(root, root / "loop")  # a loop back to the root
    assert rels(find_candidates([root])) == ["a.mp4"]
    followed = rels(find_candidates([root], follow_symlinks=True))  # the loop must terminate
    assert "a.mp4" in followed and "link_dir/secret.mp4" in followed
    assert len(followed) == len(set(followed))


def test_output_inside_an_input_directory_is_refused(tmp_path):
    touch(tmp_path, "in/a.mp4")
    with pytest.raises(UsageError, match="inside input directory"):
        check_output_dir([tmp_path / "in"], tmp_path / "in" / "out")
    with pytest.raises(UsageError):
        check_output_dir([tmp_path / "in"], tmp_path / "in")
    with pytest.raises(UsageError):  # beside a named file
        check_output_dir([tmp_path / "in/a.mp4"], tmp_path / "in")
    check_output_dir([tmp_path / "in"], tmp_path / "out")  # a sibling is fine


def test_unwritable_output_directory_is_refused(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(UsageError, match="not writable"):
        check_output_dir([tmp_path], locked / "out")


@pytest.mark.parametrize(
    "name,codec,expected",
    [
        ("shots/a.mp4", "h264", "shots/a.mp4"),  # mp4 holds h264: kept
        ("a.mov", "hevc", "a.mov"),
        ("a.avi", "hevc", "a.mkv"),  # AVI cannot hold HEVC: Matroska
        ("a.mp4", "ffv1", "a.mkv"),
        ("a.mp4", "prores", "a.mov"),  # ProRes goes to QuickTime
        ("a.webm", "h264", "a.mkv"),
        ("a.b.MP4", "h264", "a.b.MP4"),
        ("weird.bin", "h264", "weird.mkv"),
    ],
)
def test_output_naming_rule(name, codec, expected):
    assert output_relative_path(Path(name), get_codec(codec)).as_posix() == expected


def test_plan_mirrors_the_tree_under_the_output_dir(tmp_path):
    touch(tmp_path / "in", "a.mp4", "shots/b.avi")
    jobs = plan_jobs([tmp_path / "in"], UpscaleOptions(output_dir=tmp_path / "out", codec="hevc"))
    assert [j.output.relative_to(tmp_path / "out").as_posix() for j in jobs] == ["a.mp4", "shots/b.mkv"]


def test_a_walk_has_no_depth_limit_and_lists_fifos(tmp_path):
    from gvrbase import atomic

    deep = tmp_path.joinpath(*["d"] * 1200)
    atomic.make_dirs(deep)  # Path.mkdir(parents=True) itself recurses once per level
    (deep / "clip.mp4").write_bytes(b"x")
    os.mkfifo(tmp_path / "pipe.mp4")
    try:
        found = [c.relative.name for c in find_candidates([tmp_path])]
        assert found == ["clip.mp4", "pipe.mp4"], "files in walk order; a FIFO is a candidate (probing refuses it)"
    finally:  # pytest's own clean-up (shutil.rmtree) recurses once per level too
        (deep / "clip.mp4").unlink()
        atomic.remove_empty_dirs(tmp_path, deep)


def test_the_walk_never_enters_the_output_dir(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.mp4").write_bytes(b"x")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.mp4").write_bytes(b"y")
    (tmp_path / "in" / "link").symlink_to(tmp_path / "out")
    found = find_candidates([tmp_path / "in"], follow_symlinks=True, output_dir=tmp_path / "out")
    assert [c.relative.as_posix() for c in found] == ["a.mp4"]


def test_territory_uses_real_paths(tmp_path):
    from gvrcli.farm.discovery import Territory

    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").symlink_to(tmp_path / "in" / "sub")
    (tmp_path / "out" / "away").symlink_to(tmp_path)
    t = Territory(tmp_path / "out", [tmp_path / "in"])
    assert t.why_not(tmp_path / "out" / "x" / "a.mp4") is None
    assert "input directory" in t.why_not(tmp_path / "out" / "sub" / "a.mp4")
    assert "outside" in t.why_not(tmp_path / "out" / "away" / "a.mp4")
    assert "outside" in t.why_not(tmp_path / "out" / ".." / "a.mp4")
