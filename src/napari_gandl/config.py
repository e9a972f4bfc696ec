"""Settings that are saved as JSON beside what they produced (run configs, normalisers, plans)."""

from __future__ import annotations

from dataclasses import asdict, fields


class Config:
    """Mixin for a dataclass that round-trips through a plain dict (``json.dumps``-able)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        """An instance from the keys of ``d`` this class knows: a run saved by an older or newer
        version, with fields added or dropped since, still loads."""
        known = {f.name for f in fields(cls) if f.init}
        return cls(**{k: v for k, v in d.items() if k in known})
