"""``gvrcli.batch.upscale.upscale`` end to end on generated videos with the fake model.

What a user gets: the tree mirrored, each output scale x its input, every frame with its
timestamp, audio copied, colour tags and rotation carried, nothing else left in OUTPUT_DIR.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from tests.clips import read_video, write_video
from tests.fake_model import bilinear_up
from tests.clips import Tone, write_audio, write_still

from gvrcli.batch.options import UpscaleOptions
from gvrcli.batch.upscale import upscale
from gvrcli.errors import ModelError, UsageError
from gvrcli.report import DONE, FAILED, SKIPPED


def leftovers(out: Path) -> list[str]:
    """Anything in OUTPUT_DIR besides finished outputs and folders: partials, locks, temp files."""
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.name.startswith("."))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("in")
    write_video(root / "a.mp4", frames=9, audio=True)
    write_video(root / "shots" / "b.mov", frames=5, size=(48, 32))
    (root / "notes.txt").write_text("not a video")
    (root / "shots" / "frame.json").write_text("{}")
    return root


def test_tree_is_mirrored_and_stream_facts_kept(tree, tmp_path, fake_model):
    out = tmp_path / "out"
    report = upscale([tree], UpscaleOptions(output_dir=out, model=fake_model))
    assert report.exit_code == 0
    assert sorted(f.status for f in report.files) == [DONE, DONE]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["a.mp4", "shots/b.mov"]
    assert leftovers(out) == []
    for name in ("a.mp4", "shots/b.mov"):
        src, dst = read_video(tree / name), read_video(out / name)
        assert (dst["width"], dst["height"]) == (2 * src["width"], 2 * src["height"])
        assert dst["frames"] == src["frames"]
        assert dst["times"] == pytest.approx(src["times"], abs=1e-3)
        assert dst["rate"] == src["rate"]
        assert dst["audio"] == src["audio"], "audio copied packet for packet"
        # The fake model is a bilinear upscale: the output must be that, up to lossy coding.
        err = np.abs(np.stack(dst["rgb"]) - bilinear_up(np.stack(src["rgb"]), 2))
        assert err.mean() < 0.02 and np.percentile(err, 99) < 0.08


def test_rerun_skips_complete_outputs_and_overwrite_redoes_them(tree, tmp_path, fake_model):
    out = tmp_path / "out"
    upscale([tree], UpscaleOptions(output_dir=out, model=fake_model))
    again = upscale([tree], UpscaleOptions(output_dir=out, model=fake_model))
    assert [f.status for f in again.files] == [SKIPPED, SKIPPED] and again.exit_code == 0
    redo = upscale([tree], UpscaleOptions(output_dir=out, model=fake_model, overwrite=True))
    assert [f.status for f in redo.files] == [DONE, DONE]
    assert leftovers(out) == []


def test_vfr_timestamps_stay_variable(tmp_path, fake_model):
    pts = [0, 40, 90, 100, 210, 230, 300]
    src = write_video(tmp_path / "in" / "vfr.mkv", frames=len(pts), pts=pts, time_base=Fraction(1, 1000))
    upscale([src.parent], UpscaleOptions(output_dir=tmp_path / "out", model=fake_model))
    assert read_video(tmp_path / "out" / "vfr.mkv")["times"] == pytest.approx([p / 1000 for p in pts], abs=1e-3)


def test_colour_tags_rotation_and_10_bit_are_carried(tmp_path, fake_model):
    colour = {"color_range": 1, "colorspace": 1, "color_primaries": 1, "color_trc": 1}  # BT.709 limited
    src = write_video(tmp_path / "in" / "hdr.mp4", frames=4, pix_fmt="yuv420p10le", colour=colour, rotation=90)
    upscale([src], UpscaleOptions(output_dir=tmp_path / "out", model=fake_model))
    dst = read_video(tmp_path / "out" / "hdr.mp4")
    assert dst["colour"] == (1, 1, 1, 1)
    assert dst["rotation"] == read_video(src)["rotation"] != 0
    assert dst["pix_fmt"] == "yuv420p10le"


def test_x4_model_and_odd_sizes(tmp_path, fake_model_x4):
    src = write_video(tmp_path / "in" / "odd.mkv", frames=3, size=(33, 21), codec="ffv1", pix_fmt="yuv444p")
    report = upscale([src], UpscaleOptions(output_dir=tmp_path / "out", model=fake_model_x4, codec="ffv1"))
    assert report.exit_code == 0
    dst = read_video(tmp_path / "out" / "odd.mkv")
    assert (dst["width"], dst["height"], dst["frames"]) == (132, 84, 3)


def test_chunks_and_tiles_do_not_show_in_the_output(tmp_path, fake_model):
    src = write_video(tmp_path / "in" / "a.mkv", frames=10, size=(64, 48), codec="ffv1", pix_fmt="yuv444p")
    lossless = dict(model=fake_model, codec="ffv1", pix_fmt="bgr0")  # lossless RGB: only 8-bit rounding remains
    one = upscale([src], UpscaleOptions(output_dir=tmp_path / "one", chunk_frames=64, **lossless))
    cut = upscale(
        [src],
        UpscaleOptions(output_dir=tmp_path / "cut", chunk_frames=3, chunk_overlap=1, tile=24, tile_overlap=8, **lossless),
    )
    assert one.exit_code == cut.exit_code == 0
    a, b = read_video(tmp_path / "one" / "a.mkv")["rgb"], read_video(tmp_path / "cut" / "a.mkv")["rgb"]
    diff = np.abs(np.stack(a) - np.stack(b)).max()
    print(f"one piece vs chunks+tiles after encoding: max abs diff {diff:.4f}")
    assert diff <= 1 / 255 + 1e-6


def test_broken_input_fails_alone(tmp_path, fake_model):
    write_video(tmp_path / "in" / "good.mp4", frames=3)
    (tmp_path / "in" / "broken.mp4").write_bytes(b"\x00" * 1000)
    (tmp_path / "in" / "empty.mov").write_bytes(b"")
    report = upscale([tmp_path / "in"], UpscaleOptions(output_dir=tmp_path / "out", model=fake_model))
    by_name = {f.source.name: f for f in report.files}
    assert by_name["good.mp4"].status == DONE
    for bad in ("broken.mp4", "empty.mov"):
        assert by_name[bad].status == FAILED
        assert bad in by_name[bad].reason and "\n" not in by_name[bad].reason
        assert not (tmp_path / "out" / bad).exists()
    assert report.exit_code == 1
    assert leftovers(tmp_path / "out") == []


def test_model_and_option_errors_come_before_any_video(tmp_path, fake_model):
    write_video(tmp_path / "in" / "a.mp4", frames=2)
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    with pytest.raises(ModelError, match="bad.onnx"):
        upscale([tmp_path / "in"], UpscaleOptions(output_dir=tmp_path / "out", model=bad))
    with pytest.raises(UsageError, match="scale"):  # any ratio runs (x4 on an x2 model too); not zero
        upscale([tmp_path / "in"], UpscaleOptions(output_dir=tmp_path / "out", model=fake_model, scale=0))
    with pytest.raises(UsageError, match="even|multiple of 2x2"):  # 4:2:0 output: odd sides refused before any video
        upscale([tmp_path / "in"], UpscaleOptions(output_dir=tmp_path / "out", model=fake_model, size=(201, 134)))
    with pytest.raises(UsageError, match="not both"):
        upscale([tmp_path / "in"], UpscaleOptions(output_dir=tmp_path / "out", model=fake_model, size=(200, 134), scale=2.0))
    with pytest.raises(UsageError, match="codec"):
        upscale([tmp_path / "in"], UpscaleOptions(output_dir=tmp_path / "out", model=fake_model, codec="mjpeg2000"))
    assert not (tmp_path / "out").exists()


def test_dry_run_touches_nothing(tree, tmp_path, fake_model):
    report = upscale([tree], UpscaleOptions(output_dir=tmp_path / "out", model=fake_model, dry_run=True))
    assert report.exit_code == 0 and not (tmp_path / "out").exists()


def test_jobs_process_files_concurrently_with_one_model(tree, tmp_path, fake_model):
    report = upscale([tree], UpscaleOptions(output_dir=tmp_path / "out", model=fake_model, jobs=2))
    assert sorted(f.status for f in report.files) == [DONE, DONE]
    assert read_video(tmp_path / "out" / "a.mp4")["frames"] == 9


def test_audio_only_and_still_images(tmp_path, fake_model):
    """A file without video fails with a clear line; a still image in a walked folder is not an input."""
    audio = write_audio(tmp_path / "in" / "voice.m4a", Tone(signal=np.zeros_like, seconds=Fraction(10 * 1024, 48000)))
    still = write_still(tmp_path / "in" / "poster.png", content=np.zeros((1, 16, 16, 3), np.uint8))
    walked = upscale([tmp_path / "in"], UpscaleOptions(output_dir=tmp_path / "out", model=fake_model))
    assert walked.files == [], "neither is a video; .m4a/.png are not video extensions"
    named = upscale([audio, still], UpscaleOptions(output_dir=tmp_path / "out2", model=fake_model))
    reasons = sorted(f.reason for f in named.files)
    assert [f.status for f in named.files] == [FAILED, FAILED] and named.exit_code == 1
    assert "still image" in reasons[0] and "no video stream" in reasons[1]


def test_watchdog_fails_a_file_whose_decoder_hangs(tmp_path, fake_model, monkeypatch):
    import threading

    from gvrcli.media import decode

    write_video(tmp_path / "in" / "hangs.mp4", frames=3)
    write_video(tmp_path / "in" / "ok.mp4", frames=3)
    real_frames = decode.VideoDecoder.frames
    release = threading.Event()

    def frames(self):
        if self.info.path.name == "hangs.mp4":
            release.wait(30)  # a decoder stuck inside FFmpeg on a hostile file
        yield from real_frames(self)

    monkeypatch.setattr(decode.VideoDecoder, "frames", frames)
    try:
        report = upscale([tmp_path / "in"], UpscaleOptions(output_dir=tmp_path / "out", model=fake_model, stall_timeout=1.0))
    finally:
        release.set()
    by_name = {f.source.name: f for f in report.files}
    assert by_name["hangs.mp4"].status == FAILED and "stalled" in by_name["hangs.mp4"].reason
    assert by_name["ok.mp4"].status == DONE and report.exit_code == 1
    assert leftovers(tmp_path / "out") == [] and not (tmp_path / "out" / "hangs.mp4").exists()


def test_names_with_spaces_unicode_and_newlines(tmp_path, fake_model):
    from gvrcli.progress import PlainEvents

    names = ["with space.mp4", "ünïcødé 影片.mp4", "new\nline.mp4"]
    for name in names:
        write_video(tmp_path / "in" / name, frames=2)
    (tmp_path / "in" / "bad\nname.mp4").write_bytes(b"junk")
    import io

    out, err = io.StringIO(), io.StringIO()
    report = upscale([tmp_path / "in"], UpscaleOptions(output_dir=tmp_path / "out", model=fake_model), PlainEvents(out, err, interval=0))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(names)
    assert report.exit_code == 1
    (error,) = [line for line in err.getvalue().splitlines() if line.startswith("error:")]
    assert "bad\\nname.mp4" in error, "the failure stays on one line"


@pytest.mark.parametrize(
    "codec,container,decoder",
    [("h264", "a.mp4", "h264"), ("hevc", "a.mp4", "hevc"), ("av1", "a.mp4", "av1"), ("vp9", "a.mp4", "vp9"),
     ("ffv1", "a.mkv", "ffv1"), ("prores", "a.mov", "prores")],
)
def test_every_codec_writes_a_playable_output_in_a_container_that_holds_it(tmp_path, fake_model, codec, container, decoder):
    import av

    src = write_video(tmp_path / "in" / "a.mp4", frames=3)
    report = upscale([src], UpscaleOptions(output_dir=tmp_path / "out", model=fake_model, codec=codec))
    assert report.exit_code == 0, report.files[0].reason
    out = tmp_path / "out" / container
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name.startswith(decoder[:3]) or decoder in c.streams.video[0].codec_context.name
    assert read_video(out)["frames"] == 3
