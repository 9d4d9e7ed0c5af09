"""Tokenisation, collation and task sampling."""

from mtpeft.data.collate import Batch, collate, length_sorted_chunks
from mtpeft.data.encode import EncodedSplit, encode_examples
from mtpeft.data.samplers import epoch_plan, sampling_probabilities, shard_plan

__all__ = ["Batch", "EncodedSplit", "collate", "encode_examples", "epoch_plan", "length_sorted_chunks",
           "sampling_probabilities", "shard_plan"]
