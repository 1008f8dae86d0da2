"""A frame range decodes from the key frame before its first frame, not from the file's start, and
hands on exactly the frames a decode from the start gives (``VideoDecoder.frames(seek_pts=...)``)."""

from __future__ import annotations

import numpy as np
import pytest

from gvrcli.media.decode import VideoDecoder
from gvrcli.media.probe import probe_video
from tests.clips import write_video

GOPS = {
    "closed GOP": {"crf": "18", "preset": "ultrafast", "g": "10", "bf": "2"},
    "open GOP, B-frames": {"crf": "18", "preset": "veryfast", "g": "10", "bf": "3", "x264-params": "open-gop=1:scenecut=0"},
}


def decode(path, *args, **kwargs):
    decoder = VideoDecoder(probe_video(path))
    try:
        return list(decoder.frames(*args, **kwargs)), decoder.decoded
    finally:
        decoder.close()


@pytest.mark.parametrize("gop", GOPS)
def test_a_seek_hands_on_the_frames_a_decode_from_the_start_gives(tmp_path, gop):
    clip = write_video(tmp_path / "clip.mp4", frames=60, size=(96, 64), options=GOPS[gop])
    every, _ = decode(clip)
    for first, stop in ((27, 45), (40, 60), (11, 12)):
        frames, decoded = decode(clip, first, stop, seek_pts=every[first].pts)
        assert [(f.index, f.pts) for f in frames] == [(f.index, f.pts) for f in every[first:stop]]
        assert all(np.array_equal(f.rgb, g.rgb) for f, g in zip(frames, every[first:stop]))
        assert decoded < stop - 1  # frames before the key frame were not decoded at all


def test_a_timestamp_no_frame_has_decodes_from_the_start_instead(tmp_path):
    clip = write_video(tmp_path / "clip.mp4", frames=40, size=(96, 64), options=GOPS["closed GOP"])
    every, _ = decode(clip)
    for wrong in (every[25].pts + 1, every[-1].pts * 10):
        frames, decoded = decode(clip, 25, 40, seek_pts=wrong)
        assert [f.index for f in frames] == list(range(25, 40)) and decoded >= 40
        assert all(np.array_equal(f.rgb, g.rgb) for f, g in zip(frames, every[25:]))
