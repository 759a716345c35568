"""The registry of surrogate methods: one spec per way of replacing a face, which every
part of the studio reads (the commands' choices, batch, anonymize, export, the
evaluation's methods, tables and colours, the curation rules, the window's panels).

Adding a method is one ``MethodSpec`` and one maker (a class with ``load``, ``make`` and
``replace``, see ``surrogates.method_makers``), registered with ``REGISTRY.register``.
The module is light (``studio --help`` reads it): makers are imported only when a method
is first used, as glue's ``config.Registry`` and napari's layer list do.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from studio.core.errors import StudioError
from studio.core.surrogates.privacy import DEFAULT_PRIVACY, PRIVACY_PRESETS

#: What a maker may need loaded before it can draw: the conditional generator, or the
#: morphable model's renderer (OpenGL).
NEEDS_GENERATOR = "generator"
NEEDS_RENDERER = "renderer"


@dataclass(frozen=True)
class MethodSpec:
    """One way of replacing a face, declared once."""

    key: str  # its name in files, caches, rules and on the command line
    label: str  # what reports and the window call it
    colour: str  # "#rrggbb" in figures and the window
    #: "module:attribute" of a factory of its maker (imported when first used), or the
    #: factory itself; called with ``options``.
    maker: str | Callable[..., object]
    options: dict = field(default_factory=dict, hash=False)
    family: str = ""  # the method it is a strength or variant of (default: itself)
    family_label: str = ""  # what the family is called where it is chosen as one
    short: str = ""  # a column heading in the window's panels (default: the label)
    seeded: bool = False  # a drawn identity: the output changes with the seed
    in_photo: bool = False  # replaces the face inside the photo; else makes a face crop
    needs: frozenset[str] = frozenset()  # NEEDS_GENERATOR, NEEDS_RENDERER
    #: How it draws, where that changes without a model file changing: part of every
    #: cached evaluation observation's key, so that a new revision is measured anew.
    revision: int | None = None
    light: bool = False  # the lighter of a naive method's two strengths
    anonymize: bool = False  # offered by ``studio anonymize`` under its family's name
    candidate: bool = False  # a surrogate ``studio batch`` can make, curate and export
    batch_default: bool = False  # made by ``studio batch`` unless told otherwise
    evaluated: bool = True  # offered by ``studio evaluate --methods`` (by family)
    takes_context: bool = False  # honours ``--context keep|blur``

    def __post_init__(self) -> None:
        if not self.family:  # a method is its own family unless it is a variant
            object.__setattr__(self, "family", self.key)

    @property
    def aligned(self) -> bool:
        """Its output's pixels line up with the original's."""
        return self.in_photo

    @property
    def rendered(self) -> bool:
        """Made with the morphable model's renderer (OpenGL is loaded for it)."""
        return NEEDS_RENDERER in self.needs

    @property
    def column(self) -> str:
        return self.short or self.label

    @property
    def privacy(self) -> str:
        """The privacy preset it draws under (``surrogates.privacy``): its maker's option."""
        return self.options.get("privacy", DEFAULT_PRIVACY)


class MethodRegistry:
    """The methods in the order they were registered (the order of every table)."""

    def __init__(self) -> None:
        self._specs: dict[str, MethodSpec] = {}
        self._makers: dict[str, object] = {}
        self.listeners: list[Callable[[], None]] = []  # told of every (un)registration

    def register(self, spec: MethodSpec) -> MethodSpec:
        if spec.key in self._specs:
            raise ValueError(f"a method {spec.key!r} is registered already")
        self._specs[spec.key] = spec
        self._changed()
        return spec

    def unregister(self, key: str) -> None:
        self._specs.pop(key, None)
        self._makers.pop(key, None)
        self._changed()

    def _changed(self) -> None:
        for listener in list(self.listeners):
            listener()

    def __getitem__(self, key: str) -> MethodSpec:
        try:
            return self._specs[key]
        except KeyError:
            raise StudioError(f"unknown method {key!r}; use {', '.join(self._specs)}") from None

    def __contains__(self, key: object) -> bool:
        return key in self._specs

    def __iter__(self) -> Iterator[MethodSpec]:
        return iter(list(self._specs.values()))

    def keys(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def maker(self, key: str):
        """The method's maker, made once (its heavy imports happen here)."""
        if key not in self._makers:
            spec = self[key]
            factory = spec.maker
            if isinstance(factory, str):
                module, _, name = factory.partition(":")
                factory = getattr(importlib.import_module(module), name)
            self._makers[key] = factory(**spec.options)
        return self._makers[key]

    # -- the lists the commands and the window offer -------------------------------------
    def candidates(self) -> tuple[str, ...]:
        """The surrogates ``studio batch`` can make (and a study can show)."""
        return tuple(s.key for s in self if s.candidate)

    def batch_defaults(self) -> tuple[str, ...]:
        return tuple(s.key for s in self if s.batch_default)

    def anonymize_choices(self) -> tuple[str, ...]:
        return tuple(s.family for s in self if s.anonymize)

    def for_anonymize(self, name: str) -> MethodSpec:
        """The method ``studio anonymize --method name`` uses."""
        for spec in self:
            if spec.anonymize and spec.family == name:
                return spec
        raise StudioError(f"unknown method {name!r}; use {', '.join(self.anonymize_choices())}")

    def resolve(self, name: str) -> MethodSpec:
        """A method by its key, or by the name ``studio anonymize`` offers it under."""
        return self._specs[name] if name in self._specs else self.for_anonymize(name)

    def families(self) -> tuple[str, ...]:
        """The families ``studio evaluate --methods`` chooses from."""
        return tuple(dict.fromkeys(s.family for s in self if s.evaluated))

    def of_family(self, family: str) -> list[MethodSpec]:
        return [s for s in self if s.family == family]

    def family_label(self, family: str) -> str:
        first = self.of_family(family)[0]
        return first.family_label or first.label

    def family_colour(self, family: str) -> str:
        return self.of_family(family)[0].colour

    def rendered(self, keys) -> bool:
        """Whether any of ``keys`` needs the renderer."""
        return any(self[k].rendered for k in keys)


REGISTRY = MethodRegistry()

#: The methods some part of the studio means by name: the thesis's bars are checked on
#: the GAN, the window's panels draw the 3D and in-context surrogates, and anonymize
#: replaces faces in context unless told otherwise.
GAN, MORPHABLE, IN_CONTEXT = "gan", "3d", "context"
DEFAULT_ANONYMIZE = IN_CONTEXT

_MAKERS = "studio.core.surrogates.method_makers"
_NAIVE = f"{_MAKERS}:NaiveMethod"  # the baselines: a function of surrogates.baselines
#: The colours of the in-context method under each preset other than the default, in
#: ``PRIVACY_PRESETS``' order (strict first).
_PRESET_COLOURS = ("#64b5cd", "#ccb974", "#8c8c8c")


#: Each preset's own drawing revision, on top of its base's: a variant's revision is
#: ``100 * base + own``, so that a change to either is measured anew.
# strict 1: the photo's skin tone snapped to a tone bucket (skin="bucket"), not the model's.
_PRESET_REVISIONS = {"strict": 1}


def preset_variants(base: MethodSpec) -> tuple[MethodSpec, ...]:
    """``base`` under each privacy preset but the default, one method each, keyed
    ``<base>-<preset>`` (``context-strict``): ``studio batch`` makes it, ``studio evaluate``
    measures it beside the default, and a workspace records it by its key. It draws as
    ``base`` does, and as its preset (``_PRESET_REVISIONS``) does."""
    others = [p for p in PRIVACY_PRESETS.values() if p.name != DEFAULT_PRIVACY]
    return tuple(replace(base, key=f"{base.key}-{p.name}", label=f"{base.label}, {p.name} "
                         f"privacy", colour=_PRESET_COLOURS[i % len(_PRESET_COLOURS)],
                         options={**base.options, "privacy": p.name},
                         family=f"{base.key}-{p.name}", family_label="",
                         short=f"{base.column}, {p.name}", anonymize=False,
                         batch_default=False, takes_context=False,
                         revision=100 * (base.revision or 0) + _PRESET_REVISIONS.get(p.name, 0))
                 for i, p in enumerate(others))


# context 4: the refiner (issue 27) and the recall detector's unfitted faces (issue 25);
# 5: the read-back answers to both recognizers (issue 28), as context-blur 5, raw 1;
# 6: the refiner at step 3,131, its change faded in from the photo's edge (issue 27);
# six draws, not four (the second recognizer rejects more); 7: the new texture set
# along the smile axis to the joy it is drawn with (issue 27), as context-blur 7, raw 2;
# 8: the read-back asks each recognizer for a margin past its threshold (issue 28), as
# blur 8, raw 3;
# 9: a last draw that falls back gives way to the last one that cleared, as blur 9, raw 4;
# 10: drawn at up to 384 px rather than twice the face's size, the texture's outside
# filled from its nearest texel (the slider repaint, issue 27), as blur 10, raw 5;
# 12: blue and green irises only on the lighter three fifths of skin tones (11 was taken
# by a measured, unshipped default, whose evaluation cache entries must not be served for
# this). From 12, context-blur and context-raw take this revision (they draw with the same
# code), so it is bumped in one place;
# 13: the read-back also reads each new face at the original's landmarks (issue 28);
# 14: a face whose kept outline reads as the original after every margin is drawn with
# its own outline before it is blurred (verified.NEW_OUTLINE_DRAWS).
# 15 is taken by a measured, unshipped experiment (a smaller read-back margin) whose
# evaluation cache entries must not be served: the next bump is 16.
_IN_CONTEXT_SPEC = MethodSpec(
    IN_CONTEXT, "in-context surrogate", "#c44e52", f"{_MAKERS}:InContextMethod",
    short="in context", seeded=True, in_photo=True, needs=frozenset({NEEDS_RENDERER}),
    revision=14, anonymize=True, candidate=True, takes_context=True)
for _spec in (
    # gan 1: a draw is another person only when both recognizers say so (issue 28).
    MethodSpec(GAN, "GAN surrogate", "#dd8452", f"{_MAKERS}:GanMethod", short="GAN",
               seeded=True, needs=frozenset({NEEDS_GENERATOR}), revision=1, anonymize=True,
               candidate=True, batch_default=True),
    # 3d 1: the new identity set along the gender axis, grey in a grayscale photo.
    MethodSpec(MORPHABLE, "3D surrogate", "#55a868", f"{_MAKERS}:MorphableMethod", short="3D",
               seeded=True, needs=frozenset({NEEDS_RENDERER}), revision=1, anonymize=True,
               candidate=True, batch_default=True),
    # The presets other than the default (``surrogates.privacy``): context-strict.
    _IN_CONTEXT_SPEC, *preset_variants(_IN_CONTEXT_SPEC),
    MethodSpec("context-blur", "in-context surrogate, context blurred", "#937860",
               f"{_MAKERS}:InContextMethod", {"context": "blur"},
               family_label="in-context, context blurred", seeded=True, in_photo=True,
               needs=frozenset({NEEDS_RENDERER}), revision=_IN_CONTEXT_SPEC.revision),
    # The composite before the refiner (issue 27), so that realism measures both.
    MethodSpec("context-raw", "in-context composite, unrefined", "#da8bc3",
               f"{_MAKERS}:InContextMethod", {"refine": False}, seeded=True, in_photo=True,
               needs=frozenset({NEEDS_RENDERER}), revision=_IN_CONTEXT_SPEC.revision,
               evaluated=False),
    MethodSpec("blur-light", "blur, σ 5% of face width", "#4c72b0", _NAIVE,
               {"baseline": "blur", "strength": 0.05}, family="blur", family_label="blur",
               in_photo=True, light=True),
    MethodSpec("blur-strong", "blur, σ 12% of face width", "#4c72b0", _NAIVE,
               {"baseline": "blur", "strength": 0.12}, family="blur", in_photo=True,
               anonymize=True),
    MethodSpec("pixelate-light", "pixelation, 16 blocks across", "#8172b3", _NAIVE,
               {"baseline": "pixelate", "strength": 16}, family="pixelate",
               family_label="pixelation", in_photo=True, light=True),
    MethodSpec("pixelate-strong", "pixelation, 8 blocks across", "#8172b3", _NAIVE,
               {"baseline": "pixelate", "strength": 8}, family="pixelate", in_photo=True,
               anonymize=True),
    MethodSpec("mask-eyes", "black bar over the eyes", "#222222", _NAIVE,
               {"baseline": "black_mask", "strength": "eyes"}, family="mask",
               family_label="black mask", in_photo=True, light=True),
    MethodSpec("mask-face", "black mask over the face", "#222222", _NAIVE,
               {"baseline": "black_mask", "strength": "face"}, family="mask", in_photo=True,
               anonymize=True),
):
    REGISTRY.register(_spec)

#: What ``studio batch`` makes unless told otherwise (the in-context method triples a
#: batch's time; ask for it with ``--methods``).
BATCH_DEFAULTS = REGISTRY.batch_defaults()
