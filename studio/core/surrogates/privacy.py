"""The privacy presets of the in-context surrogate, declared once: what ``studio anonymize
--privacy``, the window's Privacy menu and the ablation benchmark read.

A preset is a choice of the in-context request's switches (``ContextRequest``): the
outline kept or new, the skin tone matched to the photo, coarsened to one of a few tones
or the model's own, the context kept or blurred, the hair around the face kept or
blurred. ``benchmarks/ablate_privacy.py`` measures what each switch does against the
parrot attack and the second recognizer (docs/privacy.md): the blur is what measurably
weakens the parrot attack (the second recognizer's 14x chance to 4.5x among 247
celeba-id test people); the new outline and the model's skin tone lower the first draw's
similarity to the original (0.22 to 0.10 with the blur) and the dlib figure. Strict
takes the outline and the blur, and the skin tone coarsened rather than the model's
(which changed people's apparent ethnicity).

This module is light (``studio --help`` reads it): the request is built on demand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from studio.core.errors import StudioError


@dataclass(frozen=True)
class PrivacyPreset:
    """One preset: the values of ``ContextRequest``'s privacy switches, and what it is."""

    name: str
    summary: str  # what it changes, in a few words (the window's menu, ``--help``)
    outline: str = "keep"
    skin: str = "match"
    context: str = "keep"
    hair: str = "keep"
    identity: str = "away"

    def switches(self) -> dict[str, str]:
        """The ``ContextRequest`` fields this preset sets."""
        out = asdict(self)
        del out["name"], out["summary"]
        return out

    def request(self, seed: int = 1, targets=None, refine: bool = True, **overrides):
        """The ``ContextRequest`` for a seed under this preset (``overrides``: switches a
        caller sets itself, such as an explicit ``context``)."""
        from studio.core.surrogates.incontext import ContextRequest

        return ContextRequest(seed=seed, targets=targets, refine=refine,
                              **{**self.switches(), **overrides})


DEFAULT_PRIVACY = "default"
#: The presets, in the order the window and ``--help`` offer them.
PRIVACY_PRESETS: dict[str, PrivacyPreset] = {p.name: p for p in (
    PrivacyPreset(DEFAULT_PRIVACY, "the face's outline, skin tone and context kept"),
    # strict's skin tone is the photo's snapped to a few buckets (relight.TONES),
    # not the model's: the model's turned dark-skinned people pale and light ones brown,
    # changing their apparent ethnicity (a confound for a labelling study).
    PrivacyPreset("strict", "the new identity's own outline, the skin tone coarsened to "
                  "a few tones, the context blurred", outline="new", skin="bucket",
                  context="blur"),
)}


def privacy_preset(name: str | None) -> PrivacyPreset:
    """The preset called ``name`` (None: the default); an unknown name is one clear error."""
    key = DEFAULT_PRIVACY if name is None else name
    try:
        return PRIVACY_PRESETS[key]
    except KeyError:
        raise StudioError(f"unknown privacy preset {key!r}; use "
                          f"{', '.join(PRIVACY_PRESETS)}") from None
