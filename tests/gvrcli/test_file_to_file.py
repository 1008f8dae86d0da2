"""``gvr upscale IN.mp4 OUT.mp4`` and ``gvr degrade IN.mp4 OUT.mp4``: OUTPUT names the file to write.

As ffmpeg users expect: one input file and an OUTPUT that is a file, or does not exist and ends in
a video extension, writes exactly that file, under every batch contract (atomic, skipped when it
exists, ``--overwrite``, exit codes, JSON). A folder input or several inputs with such an OUTPUT
is exit 2 with one line.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests.clips import read_video, write_video

from gvrcli.batch.options import UpscaleOptions, names_a_file
from gvrcli.batch.upscale import upscale
from gvrcli.errors import UsageError
from gvrcli.quality.pairs import DegradeOptions, degrade
from gvrcli.report import DONE, SKIPPED


def run(gvr_cmd, cli_env, *args):
    return subprocess.run([*gvr_cmd, *map(str, args)], env=cli_env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("in") / "clip.mp4", frames=5, size=(64, 48))


def everything_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_what_names_a_file(tmp_path):
    (tmp_path / "dir.mp4").mkdir()
    (tmp_path / "plain").write_text("x")
    assert names_a_file(tmp_path / "new.MP4") and names_a_file(tmp_path / "plain")
    assert not names_a_file(tmp_path / "dir.mp4") and not names_a_file(tmp_path / "new-folder")


def test_upscale_writes_the_named_file_skips_it_on_a_rerun_and_redoes_it_with_overwrite(gvr_cmd, cli_env, clip, tmp_path, fake_model):
    target = tmp_path / "out" / "up.mp4"
    first = run(gvr_cmd, cli_env, "upscale", clip, target, "--model", fake_model, "--json")
    assert first.returncode == 0, first.stderr
    assert everything_in(tmp_path / "out") == ["up.mp4"], "exactly that file: no folder, no partial, no lock"
    src, dst = read_video(clip), read_video(target)
    assert (dst["width"], dst["height"], dst["frames"]) == (2 * src["width"], 2 * src["height"], src["frames"])
    files = [e for e in map(json.loads, first.stdout.splitlines()) if e["event"] == "file"]
    assert [(f["status"], f["output"]) for f in files] == [("done", str(target))]

    stamp = target.stat().st_mtime_ns
    again = run(gvr_cmd, cli_env, "upscale", clip, target, "--model", fake_model, "--json")
    events = [json.loads(line) for line in again.stdout.splitlines()]
    assert again.returncode == 0 and [e["status"] for e in events if e["event"] == "file"] == ["skipped"]
    assert target.stat().st_mtime_ns == stamp

    redo = upscale([clip], UpscaleOptions(output_dir=target, model=fake_model, overwrite=True))
    assert [f.status for f in redo.files] == [DONE] and target.stat().st_mtime_ns != stamp
    assert everything_in(tmp_path / "out") == ["up.mp4"]


def test_a_folder_or_several_inputs_with_a_file_output_is_exit_2(gvr_cmd, cli_env, clip, tmp_path, fake_model):
    for inputs in ([clip.parent], [clip, clip]):
        done = run(gvr_cmd, cli_env, "upscale", *inputs, tmp_path / "up.mp4", "--model", fake_model)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and "'" + str(tmp_path / "up.mp4") + "' names a file" in done.stderr
        assert "give a folder as OUTPUT for " + ("a folder input" if len(inputs) == 1 else "2 inputs") in done.stderr
    assert not (tmp_path / "up.mp4").exists()


def test_the_extension_picks_the_container_and_must_hold_the_codec(clip, tmp_path, fake_model):
    with pytest.raises(UsageError, match=r"a \.webm file cannot hold h264; use --codec av1\|vp9"):
        upscale([clip], UpscaleOptions(output_dir=tmp_path / "up.webm", model=fake_model))
    with pytest.raises(UsageError, match=r"gvr writes .*\.mkv"):
        upscale([clip], UpscaleOptions(output_dir=tmp_path / "up.flv", model=fake_model))
    report = upscale([clip], UpscaleOptions(output_dir=tmp_path / "up.mkv", model=fake_model, codec="ffv1"))
    assert report.exit_code == 0 and read_video(tmp_path / "up.mkv")["frames"] == 5
    assert not (tmp_path / "up.webm").exists() and not (tmp_path / "up.flv").exists()


def test_an_existing_folder_with_a_video_name_stays_a_folder(clip, tmp_path, fake_model):
    (tmp_path / "out.mp4").mkdir()
    assert upscale([clip], UpscaleOptions(output_dir=tmp_path / "out.mp4", model=fake_model)).exit_code == 0
    assert everything_in(tmp_path / "out.mp4") == ["clip.mp4"]


def test_beside_its_input_but_never_onto_it(tmp_path, fake_model):
    src = write_video(tmp_path / "clip.mp4", frames=3)
    assert upscale([src], UpscaleOptions(output_dir=tmp_path / "clip_x2.mp4", model=fake_model)).exit_code == 0
    assert everything_in(tmp_path) == ["clip.mp4", "clip_x2.mp4"]
    with pytest.raises(UsageError, match="would replace an input file"):
        upscale([src], UpscaleOptions(output_dir=src, model=fake_model, overwrite=True))


def test_degrade_file_to_file(gvr_cmd, cli_env, clip, tmp_path):
    target = tmp_path / "lq" / "clip_lq.mp4"
    report = degrade([clip], DegradeOptions(output_dir=target, flow=False))
    assert [f.status for f in report.files] == [DONE] and everything_in(tmp_path / "lq") == ["clip_lq.mp4"]
    lq, src = read_video(target), read_video(clip)
    assert (lq["width"], lq["height"], lq["frames"]) == (src["width"] // 2, src["height"] // 2, src["frames"])
    stamp = target.stat().st_mtime_ns
    assert [f.status for f in degrade([clip], DegradeOptions(output_dir=target, flow=False)).files] == [SKIPPED]
    assert target.stat().st_mtime_ns == stamp
    redo = degrade([clip], DegradeOptions(output_dir=target, flow=False, overwrite=True))
    assert [f.status for f in redo.files] == [DONE] and target.stat().st_mtime_ns != stamp
    folder = run(gvr_cmd, cli_env, "degrade", clip.parent, tmp_path / "lq.mp4")
    assert folder.returncode == 2 and "names a file" in folder.stderr and not (tmp_path / "lq.mp4").exists()
