"""Stage routing: router adapters, pathway extraction, pathway metrics and the online monitor."""
