"""Media I/O: probing containers, decoding frames, encoding outputs, and which codec fits which container."""
