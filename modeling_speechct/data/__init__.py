"""The synthetic data factory and dataset readers: procedural CT phantoms and their reports, spoken renditions by
offline TTS engines, the CT-RATE layout they are written in (and read from), speech manifests and corpora."""
