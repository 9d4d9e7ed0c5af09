"""Readers of datasets in their original formats; importing this package registers them all."""

from mtpeft.tasks.readers import bcb, bigvul, csn, devign, flakeflagger, generic, line_pairs, methods2test
from mtpeft.tasks.readers.base import ALL, SOURCES, Source, SourceData

__all__ = ["ALL", "SOURCES", "Source", "SourceData", "bcb", "bigvul", "csn", "devign", "flakeflagger", "generic",
           "line_pairs", "methods2test"]
