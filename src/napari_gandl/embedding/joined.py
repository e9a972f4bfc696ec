"""Several runs of one method read together (``gandl embed --checkpoint A --checkpoint B``).

A site's row is each run's features side by side: two GAN-DL runs that differ only in ``--seed``
give 1,024 features. Runs trained from different seeds learn different features, and a run that
went wrong at its seed weighs half instead of all; on the benchmark suite two 16-kimg runs read
together ranked compounds better than one run on average, and better than one run trained twice
as long (docs/gan.md, "Two runs read together").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_gandl.embedding.base import Embedder


class JoinedEmbedder(Embedder):
    """Runs of one method (``parts``) whose features are put side by side, in the order given."""

    def __init__(self, parts: list[Embedder]):
        if len(parts) < 2:
            raise ValueError("reading runs together needs at least two runs")
        first = parts[0]
        seen: set[Path] = set()
        for part in parts:
            if part.source is not None:
                where = Path(part.source).resolve()
                if where in seen:
                    raise ValueError(f"{part.source}: the same run is given twice")
                seen.add(where)
            if list(part.stains) != list(first.stains):
                raise ValueError(f"{part.source} reads the stains {', '.join(part.stains)} but "
                                 f"{first.source} reads {', '.join(first.stains)}; runs read together "
                                 f"must read the same stains")
        self._parts = list(parts)
        self.name, self.stains, self.source = first.name, list(first.stains), first.source
        self.dim = sum(int(part.dim) for part in parts)

    @property
    def parts(self) -> list[Embedder]:
        return list(self._parts)

    @property
    def options(self) -> dict:
        return {"runs": [dict(part.options) for part in self._parts]}

    def embed_sites(self, images: np.ndarray) -> np.ndarray:
        return np.concatenate([part.embed_sites(images) for part in self._parts], axis=1).astype(np.float32)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {len(self._parts)} runs, {self.dim} features>"
