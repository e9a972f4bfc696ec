"""Pixels before a network sees them: per-stain normalisation, tiles and training crops of a
site, cells found in the nuclear stain, and fluorescence-safe augmentation."""
