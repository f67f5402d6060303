"""Each tenant on its own: its page (trends over nights) and its freshness check."""
