"""gvr's ground floor: small, torch-free helpers every layer above may stand on.

gvr is layered so that every import points down::

    gvrbase  <-  models  <-  export  <-  gvrcli runtime  <-  gvrcli CLI

``models`` is the reference network and its file formats, ``export`` compiles it, the runtime
(``gvrcli.inference``, ``gvrcli.media``, ``gvrcli.farm``, ...) runs the compiled graphs and the CLI
is the thin Typer layer on top. Helpers that two of those floors need (one-line error messages,
atomic writes with the right file mode, device probing) live here, so that neither has to import
the other upward. Nothing in this package imports torch, onnx or any other gvr package.
"""
