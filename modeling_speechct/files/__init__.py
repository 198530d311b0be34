"""Files every job writes: atomic writes (nothing half-written survives an interruption), checksums and the
provenance record (package, model and data revisions, machine) stored beside every result."""
