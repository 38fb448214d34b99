"""WorldModelConfig: the one config object saved with every checkpoint.

It holds both the architecture (sizes) and the training hyperparameters, so a
checkpoint alone says how it was built and trained. Presets:

- ``tiny``  for tests: trains in seconds on one CPU core.
- ``small`` the DEFAULT: trains on a 2-core CPU, and its prior/transition path
  (GRU 128, Gaussian z 32, MLP 128) is cheap enough for a planner to roll a few
  thousand latent transitions per 50 Hz control tick with ONNX Runtime.
- ``large`` for a GPU.

Values come from DreamerV3 (Hafner et al. 2023) unless a comment says otherwise;
docs/world_model.md lists them with their sources.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..data.augment import MODES as SYMMETRY_MODES

# The old name of `imagination_horizon`, still read from checkpoints and manifests written with it.
LEGACY_HORIZON = "horizon"


@dataclass(frozen=True)
class WorldModelConfig:
    """Architecture + training hyperparameters of the world model and its actor/value heads."""

    # --- architecture -------------------------------------------------------
    deter: int = 128          # GRU state h size
    stoch: int = 32           # Gaussian latent z size
    hidden: int = 128         # MLP width (RSSM, heads, actor, value)
    mlp_layers: int = 2       # hidden layers of the heads and joint encoder/decoder
    cnn_depth: int = 16       # channels of the first conv layer; doubles per stage
    joint_embed: int = 64     # joint-encoder output size (part of the embedding)
    keypoints: int = 0        # spatial-softmax keypoints in the image embedding (0 = none; networks.py)
    conv_features: bool = True  # False: the image embedding is the keypoints alone
    min_std: float = 0.1      # floor on the latent std (DreamerV2)

    # --- world-model losses -------------------------------------------------
    kl_dyn: float = 0.5       # KL(sg(post) || prior): trains the prior (V3 "dyn")
    kl_rep: float = 0.1       # KL(post || sg(prior)): regularises the posterior (V3 "rep")
    free_nats: float = 1.0    # free bits, applied to each KL term (V3)
    image_scale: float = 1.0
    joint_scale: float = 1.0
    # Divide each joint feature's squared error by a running estimate of its variance in the data,
    # so a small-range feature (a target position, +-0.2) counts as much as a wide one (a velocity,
    # symlog +-2.5). Off: one unweighted sum, where the wide features decide what the model learns.
    joint_loss_norm: bool = False
    reward_scale: float = 1.0
    # False: the data has no reward (a robot's bags without a reward topic). The representation,
    # dynamics and continuation are trained; the reward head, actor and value are not (their
    # outputs mean nothing) and the exported bundle says has_reward false, so no controller plans
    # with it until `mbrl-ros relabel` trains the reward/value heads on a stated task.
    train_reward: bool = True
    frame_reward_scale: float = 0.0  # auxiliary reward-from-one-frame loss on i.i.d. frames (0 = off; model.py)
    frame_reward_batch: int = 64     # frames per step for it
    # Train on windows turned by quarter turns ("rot90") and mirrored ("dihedral") about the base
    # joint: exact for a planar arm under a top-down camera centred on its base; or, for a state
    # vector, turned by any angle ("rotation": the listed (cos, sin) and (x, y) index pairs) (data/augment.py).
    symmetry_augment: str = "none"
    symmetry_base_joint: int = 0
    symmetry_angle_pairs: tuple = ()
    symmetry_vector_pairs: tuple = ()
    # DrQ's random shift of each training window's images by up to this many pixels (0 = off; data/augment.py)
    image_shift_pad: int = 0
    cont_scale: float = 1.0

    # --- behaviour learning (actor + value on imagined rollouts) -------------
    train_actor: bool = True
    # What the value head learns: "imagined" = the returns of the actor's imagined rollouts
    # (Dreamer; needs train_actor), "real" = TD(lambda) returns along the replayed real windows,
    # i.e. the value of whatever produced the data (the planner, on a robot) (behavior.py).
    value_from: str = "imagined"
    imagination_horizon: int = 15  # steps the actor/value learn on per imagined rollout (V3); not the
                                   # planner's horizon nor the bundle's fused horizon (docs/planners.md, Horizons)
    discount: float = 0.99    # gamma; per-step, matches 50 Hz-ish control
    lambda_: float = 0.95     # TD(lambda) (V3)
    actor_entropy: float = 3e-4  # entropy bonus on normalised returns (V3)
    slow_value_rate: float = 0.02  # EMA rate of the slow target value net (V3)
    imag_starts: int = 256    # at most this many posterior states start imagination (bounds cost)

    # --- optimisation -------------------------------------------------------
    lr_model: float = 6e-4    # DreamerV1; V3's 1e-4 is tuned for much longer runs
    lr_actor: float = 8e-5
    lr_value: float = 8e-5
    adam_eps: float = 1e-6
    grad_clip: float = 100.0  # global-norm clip per optimiser (V1/V2)
    batch_size: int = 8      # small on purpose: more updates per CPU-minute (2 cores)
    seq_len: int = 32

    PRESETS = ("tiny", "small", "large")

    def __post_init__(self):
        # index pairs arrive as lists from YAML/JSON; tuples keep configs comparable after a round trip
        for name in ("symmetry_angle_pairs", "symmetry_vector_pairs"):
            try:
                pairs = tuple(tuple(int(i) for i in pair) for pair in getattr(self, name))
            except (TypeError, ValueError):
                raise ValueError(f"WorldModelConfig.{name} must be a list of [i, j] index pairs, "
                                 f"got {getattr(self, name)!r}") from None
            object.__setattr__(self, name, pairs)

    @classmethod
    def preset(cls, name: str = "small", **overrides) -> "WorldModelConfig":
        """A named preset with optional field overrides, e.g. preset("small", seq_len=64)."""
        table = {
            "tiny": dict(deter=32, stoch=8, hidden=32, cnn_depth=4, joint_embed=16, batch_size=4, seq_len=8,
                         imagination_horizon=5, imag_starts=32, lr_model=1e-3, lr_actor=3e-4, lr_value=3e-4),
            "small": dict(),
            "large": dict(deter=512, stoch=32, hidden=512, cnn_depth=48, joint_embed=128, mlp_layers=3,
                          batch_size=16, seq_len=64, imag_starts=1024, lr_model=3e-4),
        }
        if name not in table:
            raise ValueError(f"unknown world-model preset '{name}', choose one of {list(table)}")
        return cls.from_dict({**table[name], **overrides})

    @property
    def has_value(self) -> bool:
        """Whether a value head is trained (and exported for the planners to bootstrap from)."""
        return self.train_reward and (self.train_actor or self.value_from == "real")

    def reward_free(self) -> "WorldModelConfig":
        """This config for data without a reward: no reward loss, no actor, no value, no frame head."""
        return self.replace(train_reward=False, train_actor=False, value_from="imagined", frame_reward_scale=0.0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "WorldModelConfig":
        """Build from a dict; unknown keys are an error naming them (catches typos and stale checkpoints).

        Checkpoints and manifests written before the field was renamed call
        `imagination_horizon` "horizon"; that key is read as it.
        """
        if LEGACY_HORIZON in d:
            if "imagination_horizon" in d:
                raise ValueError(f"WorldModelConfig: both '{LEGACY_HORIZON}' (the old name) and "
                                 "'imagination_horizon' given; keep only imagination_horizon")
            d = {("imagination_horizon" if k == LEGACY_HORIZON else k): v for k, v in d.items()}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown WorldModelConfig fields {unknown}; known: {sorted(known)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def replace(self, **changes) -> "WorldModelConfig":
        return self.from_dict({**self.to_dict(), **changes})

    def validate(self) -> None:
        if self.keypoints < 0:
            raise ValueError(f"WorldModelConfig.keypoints must be >= 0, got {self.keypoints}")
        if not self.conv_features and self.keypoints < 1:
            raise ValueError("WorldModelConfig.conv_features=False needs keypoints >= 1 (else the image is unused)")
        positive = ("deter", "stoch", "hidden", "cnn_depth", "joint_embed", "imagination_horizon", "batch_size", "frame_reward_batch",
                    "imag_starts")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"WorldModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr_model", "lr_actor", "lr_value", "adam_eps", "grad_clip"):
            value = float(getattr(self, name))
            if not (value > 0 and value < float("inf")):  # also refuses NaN
                raise ValueError(f"WorldModelConfig.{name} must be a positive number, got {getattr(self, name)}")
        if self.seq_len < 2:
            raise ValueError(f"WorldModelConfig.seq_len must be >= 2, got {self.seq_len}")
        if self.mlp_layers < 0:
            raise ValueError(f"WorldModelConfig.mlp_layers must be >= 0, got {self.mlp_layers}")
        if self.symmetry_augment not in SYMMETRY_MODES:
            raise ValueError(f"WorldModelConfig.symmetry_augment must be one of {list(SYMMETRY_MODES)}, "
                             f"got {self.symmetry_augment!r}")
        if not 0 <= int(self.image_shift_pad) <= 16:
            raise ValueError(f"WorldModelConfig.image_shift_pad must be 0 (off) to 16 pixels, got {self.image_shift_pad}")
        if not self.train_reward and (self.train_actor or self.value_from == "real" or self.frame_reward_scale > 0):
            raise ValueError("WorldModelConfig.train_reward=False (data without a reward) cannot train an actor, a "
                             "value or the frame reward head: set train_actor=false, value_from=imagined, "
                             "frame_reward_scale=0 (WorldModelConfig.reward_free() does)")
        if self.value_from not in ("imagined", "real"):
            raise ValueError(f"WorldModelConfig.value_from must be 'imagined' or 'real', got {self.value_from!r}")
        if not 0.0 < self.discount <= 1.0 or not 0.0 <= self.lambda_ <= 1.0:
            raise ValueError(f"discount must be in (0, 1] and lambda_ in [0, 1], got {self.discount}, {self.lambda_}")

