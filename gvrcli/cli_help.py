"""How ``gvr --help`` reads: the usage line, metavars and help panels (docs/cli-conventions.md).

Typer gets most of it from the option declarations (``metavar=``, ``rich_help_panel=``), but two
things it prints cannot be set there: a positional argument's Python type (``<list[str]>``) next
to its metavar, and a usage line built from that type (``{paths}...``). ``GvrCommand`` replaces
both with what is expected (``gvr upscale [OPTIONS] INPUT... OUTPUT``), and shows no ``<bool>``
for on/off flags. Written here because Typer (0.29) has no setting for either.
"""

from __future__ import annotations

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

# The help panels, the same names in every command (Typer's rich_help_panel).
INPUTS = "Inputs and outputs"
MODEL = "Model and runtime"
QUALITY = "Quality"
ENCODING = "Output encoding"
RESOURCES = "Resources and limits"
FARM = "Farm and progress"
EXPORT = "Export"
# Typer draws panels in the order their first option is declared; this order reads as a user
# decides (what to process, with what, how well, how to encode, within which limits, on a farm).
PANELS = (INPUTS, EXPORT, MODEL, QUALITY, ENCODING, RESOURCES, FARM)


class _NamedArgument(TyperArgument):
    """A positional argument shown by its metavar alone, in the usage line and the help table."""

    def display_type_rich(self, ctx):
        return None

    def get_usage_pieces(self, ctx) -> list[str]:
        return [self.metavar or self.name.upper()]


def _no_bool_column(param) -> None:
    if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
        param.metavar = ""  # an on/off flag takes no value: no "<bool>" column


class GvrCommand(TyperCommand):
    """A Typer command whose usage line and help show what each value is, not its Python type,
    with its option panels in ``PANELS`` order."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument) and param.metavar:
                param.__class__ = _NamedArgument  # same object, two methods replaced
            _no_bool_column(param)
        rank = {panel: i for i, panel in enumerate(PANELS)}
        self.params.sort(key=lambda p: rank.get(getattr(p, "rich_help_panel", None), len(PANELS)))  # stable

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        _no_bool_column(option)
        return option


class GvrGroup(TyperGroup):
    """The ``gvr`` group: ``--version`` and ``--help`` without a "<bool>" column."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            _no_bool_column(param)

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        _no_bool_column(option)
        return option
