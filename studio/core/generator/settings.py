"""The settings of a generator training run, declared once: ``studio train`` builds its
flags from these fields (name, type, default, help), so the command line and
``TrainSettings`` cannot disagree. A field left at None takes its objective's default
(``objectives.Objective.defaults``).

Importing this module loads no torch: ``studio --help`` reads it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import Field, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from studio.core.generator.objectives import DEFAULT_OBJECTIVE, OBJECTIVES, UNNAMED_OBJECTIVE

if TYPE_CHECKING:
    from studio.core.generator.networks import BeganConfig


def new_run_config(**changes: object) -> BeganConfig:
    """The network config for new runs: the checkerboard-free layers (issue 16)."""
    from studio.core.generator.networks import NEW_RUN_LAYERS, BeganConfig

    return BeganConfig(**{**NEW_RUN_LAYERS, **changes})


def option(default: Any, help: str, *, flag: str | None = None, metavar: str | None = None,
           choices: Collection[str] | None = None) -> Any:
    """A field that ``studio train`` offers as a flag (``--name-with-dashes`` unless
    ``flag`` says otherwise). A bool field's flag sets the opposite of its default."""
    return field(default=default, metadata={"help": help, "flag": flag, "metavar": metavar,
                                            "choices": choices})


@dataclass
class TrainSettings:
    batch: int = option(32, "images per step")
    lr: float | None = option(None, "Adam learning rate; with --resume it replaces the saved "
                                    "run's rate")
    alpha: float = 0.5  # weight of the constraint loss L_C (thesis)
    gamma: float = option(0.1, "began: diversity ratio")
    lambda_k: float = 1e-3
    label_weight: float | None = option(None, "weight of the auxiliary label loss")
    # Weigh each label's squared error by 1 / its variance in the sampled batches. Plain MSE
    # let pitch (std 6 degrees = 0.07 in [0, 1]) contribute almost nothing, so G ignored it.
    label_standardize: bool = option(
        True, "plain MSE over the labels (the thesis) instead of variance-scaled",
        flag="--plain-label-loss")
    label_ramp_steps: int = 3000  # label loss ramps up from 0 (thesis: avoids blur)
    constraint_in_generator: bool = True  # without it z collapsed in our baseline trial
    pose_balance: float = 0.5  # sampling weight = 1 / count(yaw, pitch bin) ** pose_balance
    lr_decay_every: int = 0  # steps; 0 keeps the learning rate constant
    seed: int = option(0, "seed of the networks' initialisation and the batches")
    # Issue 16 levers; TrainSettings.legacy() turns all four off (the shipped run's setup).
    ema_decay: float = 0.999  # EMA of G's weights, exported and sampled; 0 disables
    k_min: float = 0.005  # floor of k_t, so D keeps pushing back on fakes; 0 is BEGAN's
    diffaugment: str | None = None  # DiffAugment before D; "" disables
    # "hinge": a projection D (projection.py); "began": the thesis's autoencoder D and k_t
    objective: str = option(
        DEFAULT_OBJECTIVE, choices=OBJECTIVES,  # the registry itself: live
        help="hinge: a spectrally normalised projection discriminator; began: the thesis's "
             "autoencoder discriminator (pass it when resuming a BEGAN run); the same "
             "generator network either way")
    mode_seeking: float | None = option(
        None, "hinge: push apart faces that differ only in z, MSGAN's term; 0 is off",
        metavar="WEIGHT")
    r1: float = option(0.0, "hinge: R1 penalty on D's gradient at real faces, applied every "
                            "16 steps (r1_every); 0 is off", metavar="GAMMA")
    r1_every: int = 16  # steps between R1 updates (lazy regularisation, scaled to match)
    d_full_res: bool = option(
        False, "hinge: add a residual discriminator stage at 64 px (it starts as the "
               "identity, so --init-from a run without it continues that D)")
    config: BeganConfig | None = None  # None: new_run_config at the objective's width

    def __post_init__(self) -> None:
        from studio.core.generator.networks import check_policy

        objective = OBJECTIVES.get(self.objective)
        if objective is None:
            raise ValueError(f"objective must be one of {tuple(OBJECTIVES)}, "
                             f"not {self.objective!r}")
        for name, value in objective.defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.config is None:
            self.config = new_run_config(base_channels=objective.base_channels)
        check_policy(self.diffaugment)
        objective.validate(self)
        if not 0 <= self.ema_decay < 1 or not 0 <= self.k_min < 1:
            raise ValueError("ema_decay and k_min must lie in [0, 1).")

    @classmethod
    def legacy(cls, **changes: object) -> TrainSettings:
        """Settings as the shipped thesis weights were trained: BEGAN-CS, no lever of
        issue 16, the legacy layers at BEGAN's width."""
        from studio.core.generator.networks import BeganConfig

        changes.setdefault("objective", UNNAMED_OBJECTIVE)
        config = changes.pop("config", None) or BeganConfig(
            base_channels=OBJECTIVES[str(changes["objective"])].base_channels)
        return cls(ema_decay=0.0, k_min=0.0, diffaugment="", config=config, **changes)


def flag_fields() -> list[Field]:
    """The fields ``studio train`` offers as flags, in declaration order."""
    return [f for f in fields(TrainSettings) if "help" in f.metadata]


def flag_type(f: Field) -> type:
    """The Python type of a flagged field (its annotation, without ``| None``)."""
    return {"int": int, "float": float, "str": str, "bool": bool}[
        str(f.type).removesuffix(" | None")]


def objective_defaults(name: str) -> dict[str, object]:
    """A field's default under each objective, for those that depend on it (``--help``)."""
    return {key: o.defaults[name] for key, o in OBJECTIVES.items() if name in o.defaults}
