"""The efficiency ledger: parameters, bytes stored, examples, tokens, FLOPs, time and memory."""

from mtpeft.ledger.flops import FlopModel, flop_model
from mtpeft.ledger.ledger import (
    ParameterCounts,
    TrainCounters,
    count_parameters,
    data_fingerprint,
    dir_bytes,
    package_versions,
    peak_rss_bytes,
)

__all__ = [
    "FlopModel",
    "ParameterCounts",
    "TrainCounters",
    "count_parameters",
    "data_fingerprint",
    "dir_bytes",
    "flop_model",
    "package_versions",
    "peak_rss_bytes",
]
