"""The efficiency ledger: parameters, bytes stored, examples, tokens, FLOPs, time and memory."""

from mtpeft.ledger.ledger import (
    ParameterCounts,
    TrainCounters,
    count_parameters,
    data_fingerprint,
    dir_bytes,
    package_versions,
    peak_rss_bytes,
    training_flops,
)

__all__ = ["ParameterCounts", "TrainCounters", "count_parameters", "data_fingerprint", "dir_bytes",
           "package_versions", "peak_rss_bytes", "training_flops"]
