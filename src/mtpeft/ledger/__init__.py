"""The efficiency ledger: parameters, bytes stored, examples, tokens, FLOPs, time and memory."""

from mtpeft.ledger.flops import FlopModel, attended_pairs, flop_model
from mtpeft.ledger.ledger import (
    ParameterCounts,
    TrainCounters,
    baseline_costs,
    count_parameters,
    cpu_info,
    data_fingerprint,
    dir_bytes,
    git_commit,
    package_versions,
    peak_rss_bytes,
    task_fingerprints,
)

__all__ = [
    "FlopModel",
    "ParameterCounts",
    "TrainCounters",
    "attended_pairs",
    "baseline_costs",
    "count_parameters",
    "cpu_info",
    "data_fingerprint",
    "dir_bytes",
    "flop_model",
    "git_commit",
    "package_versions",
    "peak_rss_bytes",
    "task_fingerprints",
]
