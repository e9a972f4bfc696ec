"""Handcrafted, CellProfiler-style per-site features (no training, no weights): the baseline
every learned embedding is compared with, and the description the sample-quality metrics use."""
