"""Method-neutral embedding pipeline (Qt-free).

An :class:`Embedder` turns raw site images into feature vectors; methods are
looked up by name in the registry (``METHODS``; each lives in one module under
``embedding/methods/``); :func:`embed_plate` runs one over a plate (batches,
stain mapping, resumable parquet streaming, dask.distributed).  See
docs/embedding.md.

    from napari_gandl.embedding import embed_plate, load_embedder
    emb = load_embedder("gandl", "runs/demo", plate, device="cpu")
    df = embed_plate(plate, emb, out_path="embeddings.parquet")
"""

from napari_gandl.embedding.base import FEATURE_PREFIX, Embedder, feature_columns
from napari_gandl.embedding.pipeline import embed_batch, embed_plate, iterate_embedding, read_embedding_table, site_metadata
from napari_gandl.embedding.registry import METHODS, MethodSpec, get_method, load_embedder, method_names, register
from napari_gandl.embedding.stains import StainMapError, map_stains, resolve_stain_map

__all__ = [
    "Embedder", "FEATURE_PREFIX", "METHODS", "MethodSpec", "StainMapError", "embed_batch", "embed_plate",
    "feature_columns", "get_method", "iterate_embedding", "load_embedder", "map_stains", "method_names",
    "read_embedding_table", "register", "resolve_stain_map", "site_metadata",
]
