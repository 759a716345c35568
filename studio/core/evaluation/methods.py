"""The de-identification methods an evaluation compares: the original as the reference,
then every method of the surrogates' registry (the surrogates, and the naive baselines at
two strengths each), read live so that a method registered at run time is measured too."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from studio.core.errors import StudioError
from studio.core.surrogates.registry import REGISTRY, MethodSpec

#: An evaluated method is a registry spec; the original is the reference row of every table.
Method = MethodSpec
ORIGINAL = MethodSpec("original", "original (reference)", "#555555", maker="", in_photo=True,
                      evaluated=False)


class _Methods(Mapping[str, MethodSpec]):
    """The original, then the registered methods in their order."""

    def __getitem__(self, key: str) -> MethodSpec:
        if key == ORIGINAL.key:
            return ORIGINAL
        if key not in REGISTRY:
            raise KeyError(key)
        return REGISTRY[key]

    def __iter__(self) -> Iterator[str]:
        return iter((ORIGINAL.key, *REGISTRY.keys()))

    def __len__(self) -> int:
        return 1 + len(REGISTRY.keys())


METHODS: Mapping[str, MethodSpec] = _Methods()


def families() -> tuple[str, ...]:
    """The families ``studio evaluate --methods`` chooses from."""
    return REGISTRY.families()


def family_colour(family: str) -> str:
    return ORIGINAL.colour if family == ORIGINAL.family else REGISTRY.family_colour(family)


def methods_for(chosen: Iterable[str]) -> list[MethodSpec]:
    """The methods of the named families, after the original (always the reference)."""
    chosen = [f.strip() for f in chosen if f.strip()]
    offered = families()
    unknown = sorted(set(chosen) - set(offered))
    if unknown:
        raise StudioError(f"unknown method {', '.join(unknown)}; use {', '.join(offered)}")
    return [ORIGINAL, *(s for s in REGISTRY if s.evaluated and s.family in chosen)]
