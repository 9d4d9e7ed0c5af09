"""Multi-task training: assembly, the loop, checkpoints and the run directory."""

from mtpeft.train.artifacts import TrainedRun, check_complete, load_trained
from mtpeft.train.build import Assembled, assemble
from mtpeft.train.loop import TrainingDiverged, train

__all__ = ["Assembled", "TrainedRun", "TrainingDiverged", "assemble", "check_complete", "load_trained", "train"]
