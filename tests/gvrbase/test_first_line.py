"""One-line reports of foreign exceptions (``gvrbase.errors.first_line``), used by the runtime and the exporter."""

from __future__ import annotations

import av

from gvrbase.errors import FIRST_LINE_CHARS, first_line


def test_os_and_ffmpeg_errors_say_their_own_words():
    # The caller names the file; the errno text is the cause.
    assert first_line(PermissionError(13, "Permission denied", "/in/a.mp4")) == "Permission denied"
    assert first_line(av.error.InvalidDataError(1094995529, "Invalid data found when processing input")) == (
        "Invalid data found when processing input"
    )


def test_other_errors_keep_their_type_and_first_line():
    assert first_line(KeyError("lr")) == "KeyError: 'lr'"
    assert first_line(RuntimeError("\n  Exception from core.cpp:42:\nstack...\nmore")) == "RuntimeError: stack..."
    openvino = "Exception from src/inference/src/cpp/core.cpp:117:\nException from src/dev/plugin.cpp:54:\nCheck 'x' failed at node.cpp:345:\nempty for node: Softmax"
    assert first_line(RuntimeError(openvino)) == "RuntimeError: Check 'x' failed at node.cpp:345:"
    assert first_line(RuntimeError("Exception from core.cpp:42:")) == "RuntimeError: Exception from core.cpp:42:"
    assert first_line(AssertionError()) == "AssertionError"
    assert first_line(OSError("no errno, only a message")) == "OSError: no errno, only a message"


def test_a_page_long_message_is_clipped_to_one_short_line():
    text = first_line(ValueError("x" * 5000))
    assert len(text) == FIRST_LINE_CHARS and text.startswith("ValueError: xxx") and text.endswith("…")
