"""Progress display: a live Rich display in a real terminal, plain lines everywhere else."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess

import pytest
from conftest import write_video

COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|9[0-7]|38;[25])[;m]")


@pytest.fixture(scope="module")
def two_clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("progress_in")
    write_video(root / "a.mp4", frames=10, size=(96, 64))
    write_video(root / "shots" / "b.mp4", frames=6, size=(96, 64))
    return root


def run_in_pty(argv, env, timeout=60) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as its stdin/stdout/stderr; return (exit code, everything it drew)."""
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    proc = subprocess.Popen(argv, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=timeout), b"".join(chunks).decode("utf-8", "replace")


def test_a_terminal_gets_the_live_rich_display(gvr_cmd, cli_env, two_clips, tmp_path, fake_model):
    env = {**cli_env, "TERM": "xterm-256color", "COLUMNS": "110", "LINES": "30"}
    env.pop("NO_COLOR", None)
    code, screen = run_in_pty([*gvr_cmd, "upscale", str(two_clips), str(tmp_path / "out"), "--model", str(fake_model), "--steps", "20"], env)
    assert code == 0, screen
    assert "━" in screen, "a progress bar was drawn"
    assert "files" in screen and "fps" in screen
    assert "\x1b[" in screen, "redrawn in place with terminal control sequences"
    assert "2 done, 0 skipped, 0 failed" in screen
    assert "Progress:" not in screen, "no plain progress lines on a terminal"


def test_no_color_is_honoured_in_a_terminal(gvr_cmd, cli_env, two_clips, tmp_path, fake_model):
    env = {**cli_env, "TERM": "xterm-256color", "COLUMNS": "110", "NO_COLOR": "1"}
    code, screen = run_in_pty([*gvr_cmd, "upscale", str(two_clips), str(tmp_path / "out"), "--model", str(fake_model)], env)
    assert code == 0
    assert "━" in screen and not COLOUR.search(screen)


def test_without_a_terminal_progress_is_plain_lines(gvr_cmd, cli_env, two_clips, tmp_path, fake_model):
    done = subprocess.run(
        [*gvr_cmd, "upscale", str(two_clips), str(tmp_path / "out"), "--model", str(fake_model), "--progress-interval", "0", "--openjd"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "\r" not in out and "\x1b" not in out and "\x1b" not in done.stderr
    lines = out.splitlines()
    progress = [int(line.split()[1].rstrip("%")) for line in lines if line.startswith("Progress: ")]
    assert progress == sorted(progress) and progress[-1] == 100, "Deadline-style lines, rising to 100%"
    assert "openjd_progress: 100.0" in lines
    assert any(line.startswith("done: ") and "fps" in line for line in lines)
    assert lines[-1].startswith("gvr: 2 done, 0 skipped, 0 failed")


def test_plain_progress_lines_are_rate_limited(gvr_cmd, cli_env, two_clips, tmp_path, fake_model):
    done = subprocess.run(
        [*gvr_cmd, "upscale", str(two_clips), str(tmp_path / "out"), "--model", str(fake_model), "--progress-interval", "3600"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    progress = [line for line in done.stdout.splitlines() if line.startswith("Progress:")]
    assert len(progress) <= 2 and progress[-1] == "Progress: 100%"
