"""The deployment manifest: what an exported gvr model declares about itself.

The exporter writes it into every artefact (ONNX ``metadata_props``, OpenVINO ``rt_info``) under
``MANIFEST_KEY`` as JSON; the runtime reads it back and refuses a model it does not understand.
Torch-free: the runtime imports this.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

MANIFEST_KEY = "gvr.manifest"
FORMAT = "gvr-denoiser"
# 2: two graphs per model: the main file is the sampler step, the condition graph a companion.
# 3: the condition graph takes the output size (``hr_grid``), so any ratio runs; a model with a
#    text path has a ``text`` graph and its step takes the prompt's tokens.
FORMAT_VERSION = 3

# An exported model is several graphs (roles): the main artefact is the ``step`` graph, which
# carries this manifest; the others are companion files beside it, named with their SHA-256 in
# ``graphs``. Their tensors, in NCTHW layout (``base`` only for the x0_residual prediction, the
# text tensors only for a model with ``text_dim``):
#   text:      (prompt) -> text, text_null                                 once per video
#   condition: (lr, lr_noise, noise_aug, hr_grid) -> cond [, base]         once per clip (chunk, tile)
#   step:      (z_t, t, t_next, cond, noise_aug [, base] [, text]) -> z_next   once per sampler step
# ``hr_grid`` (1, 1, 1, H, W) carries the output size in its shape (its values are never read):
# a size *value* would make the output shape data-dependent, which neither torch.export nor a
# runtime's static shape planning handles; a shape is just another dynamic dimension.
# ``prompt`` (1, L, text_dim) is the base pipeline's embeddings; ``text`` (1, L, dim) their per-token
# projection, ``text_null`` (1, text_tokens, dim) the learned null embedding's. The step takes
# ``text`` (1, text_tokens, dim): the runtime pads a short prompt with text_null's rows.
STEP, CONDITION, TEXT = "step", "condition", "text"
# A latent-cascade bundle (``gvr export --vae``) also names the VAE's four chunk graphs
# (``models.vae_manifest``): all four or none, with the VAE weights' hash in ``vae_weights_sha256``.
VAE_ROLES = ("vae_encoder_first", "vae_encoder", "vae_decoder_first", "vae_decoder")
BUNDLE_MAIN = "denoiser"  # a bundle folder's step graph: denoiser.onnx or denoiser.xml
COMPANION_ROLES = (CONDITION, TEXT, *VAE_ROLES)


def graph_io(role: str, prediction: str, text: bool = False) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(input names, output names) of the graph ``role`` of a model with this prediction type and,
    with ``text``, a text path."""
    base = ("base",) if prediction == "x0_residual" else ()
    if role == STEP:
        return ("z_t", "t", "t_next", "cond", "noise_aug", *base, *(("text",) if text else ())), ("z_next",)
    if role == CONDITION:
        return ("lr", "lr_noise", "noise_aug", "hr_grid"), ("cond", *base)
    if role == TEXT:
        return ("prompt",), ("text", "text_null")
    raise ValueError(f"unknown graph role {role!r}")


def graph_roles(text: bool) -> tuple[str, ...]:
    """The companion graphs a model has: the condition graph, and the text graph with a text path."""
    return (CONDITION, TEXT) if text else (CONDITION,)


INPUT_NAMES, OUTPUT_NAMES = graph_io(STEP, "x0_residual")  # the default model's step graph


UNTRAINED_NOTE = "untrained model: the output is a bilinear-equivalent upscale"


class ManifestError(ValueError):
    """Missing or inconsistent model metadata."""


@dataclass
class ModelManifest:
    config: dict  # the GVRConfig the network was built from (asdict)
    scale: int  # output = scale x input, spatially
    latent_channels: int
    patch: int  # spatial patch size in latent cells
    window: tuple[int, int]  # 2D attention unit, in tokens (rows, cols)
    temporal_unit: int  # latent frames per temporal unit
    steps: int  # default sampler steps
    noise_aug: float  # default noise-augmentation level of the LR condition
    prediction: str  # what the network head predicts ("x0_residual" | "velocity"); the step graph outputs z_next
    attention: str  # "sparse" | "masked" | "swin" | "full"
    codec: str = "pixel"  # models.codec name
    text_dim: int = 0  # width of the prompt embeddings the text graph takes; 0 = no text path
    text_tokens: int = 0  # prompt tokens the step takes (the runtime cuts or pads with the null embedding)
    shift: float = 1.0  # SD3 timestep shift of the sampler schedule (models.rectified_flow.timesteps)
    weights_sha256: str = ""
    gvr_version: str = ""
    precision: str = "fp32"
    dynamic: bool = True
    static_shape: tuple[int, int, int] | None = None  # (T, h, w) of the LR input when not dynamic
    input_layout: str = "NCTHW"
    value_range: tuple[float, float] = (0.0, 1.0)  # pixels the codec takes, RGB
    colour: str = "RGB, BT.709 matrix on decode; values are the input's code values scaled to [0, 1]"
    inputs: tuple[str, ...] = ()  # the step graph's (graph_io(STEP, prediction)); () = those
    outputs: tuple[str, ...] = ()
    # Companion graphs, role -> {"file": name beside the main file, "sha256": of its bytes (IR: .xml
    # then .bin)}: the runtime refuses a model whose companions are missing, elsewhere or altered.
    graphs: dict = field(default_factory=dict)
    vae_weights_sha256: str = ""  # the VAE whose graphs a bundle carries (models.vae.vae_sha256)
    # True when the exporter found the network at its untrained init: an x0_residual network whose
    # head is zero (``SimpleGVR.step_independent``) outputs its condition's upsampling, a
    # bilinear-equivalent upscale, whatever its weights elsewhere. Absent in older manifests: False,
    # so only a model known to be untrained is ever called so.
    untrained: bool = False
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        step_in, step_out = graph_io(STEP, self.prediction, self.has_text) if self.prediction in ("x0_residual", "velocity") else ((), ())
        self.inputs, self.outputs = tuple(self.inputs or step_in), tuple(self.outputs or step_out)

    @property
    def has_vae(self) -> bool:
        """A latent-cascade bundle: the VAE's graphs travel with the denoiser."""
        return bool(self.vae_weights_sha256)

    @property
    def has_text(self) -> bool:
        return bool(self.text_dim)

    @property
    def note(self) -> str:
        """What a user must know about the model before trusting its output, in one line ("" if nothing)."""
        return UNTRAINED_NOTE if self.untrained else ""

    @property
    def spatial_multiple(self) -> int:
        """LR sizes the graph handles without internal padding waste (it pads anything else)."""
        return self.patch * self.window[0]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None, source: str = "model") -> "ModelManifest":
        return parse_manifest(
            cls, text, source, ("window", "value_range", "inputs", "outputs", "static_shape"), check=_type_problems
        )

    def validate(self, source: str = "model") -> None:
        """Raise ManifestError unless the fields agree with each other and with this runtime."""
        problems = format_problems(self, FORMAT, FORMAT_VERSION)
        if self.format_version < FORMAT_VERSION:
            raise ManifestError(
                f"{source}: gvr model format {self.format_version} is older than this gvr's ({FORMAT_VERSION}: "
                "condition graph takes the output size, text graph); re-export it with gvr export"
            )
        if self.scale not in (2, 4):
            problems.append(f"scale {self.scale} is not 2 or 4")
        for key in ("scale", "patch", "temporal_unit", "latent_channels", "text_dim", "text_tokens", "shift"):
            if key in self.config and self.config[key] != getattr(self, key):
                problems.append(f"{key} {getattr(self, key)} disagrees with its config ({self.config[key]})")
        window = self.config.get("window") if isinstance(self.config, dict) else None
        if window is not None and (not isinstance(window, (list, tuple)) or tuple(window) != tuple(self.window)):
            problems.append(f"window {self.window} disagrees with its config ({self.config['window']})")
        if self.steps < 1 or self.temporal_unit < 1 or self.patch < 1 or min(self.window) < 1:
            problems.append("steps, temporal_unit, patch and window must be positive")
        if not 0.0 <= self.noise_aug <= 1.0:
            problems.append(f"noise_aug {self.noise_aug} is outside [0, 1]")
        if (self.text_dim > 0) != (self.text_tokens > 0):
            problems.append(f"text_dim {self.text_dim} and text_tokens {self.text_tokens} must both be positive or both 0")
        if not self.shift > 0:
            problems.append(f"shift {self.shift} is not > 0")
        if self.has_text and not (isinstance(self.config, dict) and _is_int(self.config.get("dim")) and 0 < self.config["dim"] <= MAX_TEXT):
            problems.append("a model with a text path must give its width (config dim): the size of its text tokens")
        if self.prediction not in ("x0_residual", "velocity"):
            problems.append(f"unknown prediction {self.prediction!r}")
        elif (tuple(self.inputs), tuple(self.outputs)) != graph_io(STEP, self.prediction, self.has_text):
            problems.append(f"inputs/outputs {self.inputs}/{self.outputs} are not {graph_io(STEP, self.prediction, self.has_text)}")
        problems += _graph_problems(self.graphs, graph_roles(self.has_text))
        vae_roles = [r for r in VAE_ROLES if isinstance(self.graphs, dict) and r in self.graphs]
        if vae_roles and len(vae_roles) != len(VAE_ROLES) or bool(vae_roles) != bool(self.vae_weights_sha256):
            problems.append("a VAE bundle names all four VAE graphs and the VAE weights' hash, or none of them")
        if self.input_layout != "NCTHW":
            problems.append(f"input layout {self.input_layout!r} is not 'NCTHW'")
        if not self.dynamic and self.static_shape is None:
            problems.append("a static model must declare static_shape")
        from models.codec import CODECS

        if self.codec not in CODECS:
            problems.append(f"unknown latent codec {self.codec!r}")
        if problems:
            raise ManifestError(f"{source}: inconsistent gvr manifest: {'; '.join(problems)}")


def _graph_problems(graphs, roles: tuple[str, ...]) -> list[str]:
    if not isinstance(graphs, dict):
        return ["graphs is not an object"]
    problems = [f"companion graph {role!r} is missing" for role in roles if role not in graphs]
    for role, entry in graphs.items():
        if role not in roles and role not in VAE_ROLES:
            problems.append(f"unknown companion graph {role!r}")
            continue
        name = entry.get("file") if isinstance(entry, dict) else None
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        # A plain file name: companions live beside the main file, never elsewhere.
        if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name:
            problems.append(f"companion graph {role!r} names no plain file name ({name!r})")
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            problems.append(f"companion graph {role!r} has no sha256")
    return problems


# What an exported artefact computes in (``export.spec.DENOISER_PRECISIONS``): another value in a
# manifest is a forged or foreign model (exit 2 naming the model, not ``--precision``).
ARTEFACT_PRECISIONS = ("fp32", "fp16", "bf16", "int8")

# Upper bounds no real model comes near; they keep a forged manifest from sizing buffers or loops.
MAX_SIDE = 4096  # patch, window sides, temporal unit
MAX_STEPS = 10_000
MAX_CHANNELS = 1024
MAX_TEXT = 65536  # prompt width and tokens


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and v == v and abs(v) != float("inf")


def _int_list(v, n: int | None, low: int, high: int) -> bool:
    return (
        isinstance(v, (list, tuple))
        and (n is None or len(v) == n)
        and all(_is_int(x) and low <= x <= high for x in v)
    )


def _type_problems(raw: dict) -> list[str]:
    """Types and ranges of the fields as read from JSON (before any arithmetic uses them)."""
    problems = []

    def need(key: str, ok: bool, what: str) -> None:
        if key in raw and not ok:
            problems.append(f"{key} {raw[key]!r} is not {what}")

    def integer(key: str, low: int, high: int) -> None:
        need(key, _is_int(raw.get(key)) and low <= raw[key] <= high, f"an integer in [{low}, {high}]")

    integer("scale", 1, 16)
    integer("latent_channels", 1, MAX_CHANNELS)
    integer("patch", 1, MAX_SIDE)
    integer("temporal_unit", 1, MAX_SIDE)
    integer("steps", 1, MAX_STEPS)
    integer("text_dim", 0, MAX_TEXT)
    integer("text_tokens", 0, MAX_TEXT)
    need("shift", _is_num(raw.get("shift")), "a number")
    integer("format_version", 0, 1 << 31)
    need("window", _int_list(raw.get("window"), 2, 1, MAX_SIDE), f"two integers in [1, {MAX_SIDE}]")
    need("noise_aug", _is_num(raw.get("noise_aug")), "a number")
    need("config", isinstance(raw.get("config"), dict), "a JSON object")
    need("extra", isinstance(raw.get("extra"), dict), "a JSON object")
    need("graphs", isinstance(raw.get("graphs"), dict), "a JSON object")
    need("dynamic", isinstance(raw.get("dynamic"), bool), "true or false")
    need("untrained", isinstance(raw.get("untrained"), bool), "true or false")
    if raw.get("static_shape") is not None:
        need("static_shape", _int_list(raw.get("static_shape"), 3, 1, 1 << 20), "three positive integers")
    need(
        "value_range",
        isinstance(raw.get("value_range"), (list, tuple)) and len(raw["value_range"]) == 2 and all(_is_num(x) for x in raw["value_range"]),
        "two numbers",
    )
    for key in ("inputs", "outputs"):
        need(key, isinstance(raw.get(key), (list, tuple)) and all(isinstance(x, str) for x in raw[key]), "a list of names")
    for key in ("prediction", "attention", "codec", "weights_sha256", "vae_weights_sha256", "gvr_version", "precision", "input_layout", "colour", "format"):
        need(key, isinstance(raw.get(key), str), "text")
    need("precision", raw.get("precision") in ARTEFACT_PRECISIONS, f"one of {', '.join(ARTEFACT_PRECISIONS)}")
    return problems


def format_problems(manifest, fmt: str, version: int) -> list[str]:
    """Why a manifest's format is not ``fmt`` of at most ``version`` (empty when it is)."""
    problems = []
    if manifest.format != fmt:
        problems.append(f"format {manifest.format!r} is not {fmt!r}")
    if manifest.format_version > version:
        problems.append(f"format version {manifest.format_version} is newer than this gvr ({version})")
    return problems


def json_object(text: str) -> dict:
    """Parse a JSON object; else ValueError, "is not valid JSON (why)" or "is not a JSON object"."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"is not valid JSON ({e.msg})") from None
    except RecursionError:  # arrays nested 50,000 deep: the parser's own bound, as one line
        raise ValueError("is nested too deeply to be a manifest") from None
    if not isinstance(raw, dict):
        raise ValueError("is not a JSON object")
    return raw


def parse_manifest(cls, text: str | None, source: str, tuple_fields: tuple[str, ...], check=None):
    """A manifest dataclass from its JSON (unknown keys ignored, lists made tuples), validated.
    ``check(raw)`` lists type and range problems of the raw fields before anything uses them."""
    if not text:
        raise ManifestError(f"{source}: no gvr manifest ({MANIFEST_KEY!r} metadata is missing)")
    try:
        raw = json_object(text)
    except ValueError as e:
        raise ManifestError(f"{source}: gvr manifest {e}") from None
    names = {f.name for f in dataclasses.fields(cls)}
    missing = sorted(n for n in names if n not in raw and _required(cls, n))
    if missing:
        raise ManifestError(f"{source}: gvr manifest lacks {', '.join(missing)}")
    raw = {k: v for k, v in raw.items() if k in names}
    problems = check(raw) if check is not None else []
    if problems:
        raise ManifestError(f"{source}: inconsistent gvr manifest: {'; '.join(problems)}")
    for key in tuple_fields:
        if raw.get(key) is not None:
            raw[key] = tuple(raw[key])
    manifest = cls(**raw)
    manifest.validate(source)
    return manifest


def _required(cls, name: str) -> bool:
    f = cls.__dataclass_fields__[name]
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def graph_sha256(path) -> str:
    """SHA-256 of a graph file as ``graphs`` records it: its bytes, and for OpenVINO IR (.xml) the
    bytes of its weights (.bin) after them."""
    import hashlib
    from pathlib import Path

    path = Path(path)
    digest = hashlib.sha256()
    for part in (path, path.with_suffix(".bin")) if path.suffix.lower() == ".xml" else (path,):
        with open(part, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def companion_name(main_name: str, role: str) -> str:
    """``gvr-tiny-x2.onnx`` -> ``gvr-tiny-x2.condition.onnx`` (same suffix as the main file)."""
    stem, dot, suffix = main_name.rpartition(".")
    return f"{stem}.{role}.{suffix}" if dot else f"{main_name}.{role}"
