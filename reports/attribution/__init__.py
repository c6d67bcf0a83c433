"""The attribution engine: pure NumPy, no Django.

Paths are flat arrays (``paths``); the rule-based models are in ``heuristic``,
the data-driven ones in ``markov`` (exact removal effects) and ``shapley``
(exact over channel sets); ``engine.attribute`` runs any of the eight.
"""

from .distribution import FitError, Split
from .engine import (
    MODEL_NAMES,
    Touch,
    attribute,
    channel_weights,
    engine_input_from_lists,
    model_split,
    touch_credits,
    touch_shares,
)
from .heuristic import DEFAULT_HALF_LIFE_DAYS
from .markov import markov_channel_credit
from .paths import ChannelPaths, ConvertingPaths
from .shapley import shapley_channel_credit

__all__ = [
    "DEFAULT_HALF_LIFE_DAYS",
    "MODEL_NAMES",
    "ChannelPaths",
    "ConvertingPaths",
    "FitError",
    "Split",
    "Touch",
    "attribute",
    "channel_weights",
    "engine_input_from_lists",
    "markov_channel_credit",
    "model_split",
    "shapley_channel_credit",
    "touch_credits",
    "touch_shares",
]
