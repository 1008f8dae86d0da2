"""Batches: many input videos into an output folder, by one worker or many sharing it.

One module per step of a batch, in the order a run takes them:

- ``options``: what a batch takes besides its inputs, and the checks that refuse a bad run
  before anything is created (``check_batch``);
- ``planning``: each input's output path, collisions and this worker's shard (``plan_batch``);
- ``model``: the model ``gvr upscale`` runs: found, its engine settings, loaded;
- ``runner``: the run itself (``process_batch``): probing, claims, ``--jobs`` workers, atomic
  outputs, events and the report; the other workers sharing OUTPUT_DIR are
  ``gvrcli.farm.workers``;
- ``watchdog``: a call that may hang (a probe, a model load) bounded by ``--stall-timeout``;
- ``upscale``: ``gvr upscale`` as a library, ``upscale(inputs, UpscaleOptions(...))``, from
  the steps above (``gvr degrade``'s is ``gvrcli.quality.pairs``).

Nothing is imported here: import each name from its module.
"""
