"""Farm plumbing: which inputs a worker takes (discovery, shards), claims on outputs (locks), atomic
writes (shared with the exporter: ``export.outputs`` stages its artefacts with ``atomic``)."""
