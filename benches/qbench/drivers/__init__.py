"""Client processes: each prints ``ready``, waits for ``go``, then measures."""
