"""Farm plumbing: which inputs a worker takes (discovery, shards), claims on outputs (locks), atomic writes."""
