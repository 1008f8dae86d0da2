"""Upscale many videos with Ray Data: one gvr model session per actor (one actor per GPU), files
handed out by ``from_items(paths).map_batches(...)``.

    python examples/ray/upscale_ray.py IN_DIR OUT_DIR [--model MODEL] [--gpus N] [--cpu-actors N]

Each actor loads the model once (``gvrcli.api.Session``) and upscales the files of each batch it is
given with ``gvrcli.api.upscale_file``: the same contracts as ``gvr upscale`` (atomic outputs,
finished outputs skipped, one failed file reported without stopping the others). A batch-wide
error (bad model, exit code 2) raises in the actor and fails the Ray job; exit code 75 (GPU
missing or out of memory) raises too, and Ray's task retries may place the batch elsewhere.
Ray is not a dependency of gvr: ``pip install 'ray[data]'``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

VIDEO = {".mp4", ".mkv", ".mov", ".webm", ".avi"}


class Upscaler:
    """A Ray actor: one model session, kept for every batch this actor is given."""

    def __init__(self, out_dir: str, model: str | None, options: dict):
        from gvrcli.api import Session

        self.out_dir, self.model, self.options = Path(out_dir), model, options
        self.session = Session()

    def __call__(self, batch: dict) -> dict:
        from gvrcli.api import upscale_file

        status, reason = [], []
        for path in batch["path"]:
            output = self.out_dir / (Path(path).stem + ".mp4")
            result = upscale_file(path, output, model=self.model, session=self.session, **self.options)
            status.append(result.status)
            reason.append(result.reason or "")
        return {"path": list(batch["path"]), "status": status, "reason": reason}


def run(in_dir: Path, out_dir: Path, model: str | None, gpus: int, cpu_actors: int, options: dict | None = None) -> list[dict]:
    import ray

    paths = sorted(str(p) for p in in_dir.rglob("*") if p.suffix.lower() in VIDEO)
    out_dir.mkdir(parents=True, exist_ok=True)
    actors = gpus or cpu_actors
    results = ray.data.from_items([{"path": p} for p in paths]).map_batches(
        Upscaler,
        fn_constructor_args=(str(out_dir), model, options or {}),
        batch_size=1,  # a video is a long task: hand them out one by one
        concurrency=actors,  # one actor per GPU (or per CPU slot)
        num_gpus=1 if gpus else 0,
    )
    return results.take_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("in_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--model")
    parser.add_argument("--gpus", type=int, default=0, help="actors, one GPU each (0: CPU actors)")
    parser.add_argument("--cpu-actors", type=int, default=1)
    args = parser.parse_args()
    rows = run(args.in_dir, args.out_dir, args.model, args.gpus, args.cpu_actors)
    for row in rows:
        print(f"{row['status']:8} {row['path']} {row['reason']}")
    raise SystemExit(1 if any(r["status"] == "failed" for r in rows) else 0)


if __name__ == "__main__":
    main()
