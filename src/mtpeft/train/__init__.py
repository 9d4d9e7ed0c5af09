"""Multi-task training: the loop, its checkpoints and what it records (the run it builds is :mod:`mtpeft.run`)."""

from mtpeft.train.loop import TrainingDiverged, train

__all__ = ["TrainingDiverged", "train"]
