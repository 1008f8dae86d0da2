"""Farm plumbing: which inputs a worker takes (discovery, shards), claims on outputs (locks). The
atomic writes beneath them are ``gvrbase.atomic``, shared with the exporter."""
