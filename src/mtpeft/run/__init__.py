"""A run on disk: what a config builds, where it computes, how it is evaluated, stored and loaded back.

Training (:mod:`mtpeft.train`), serving (:mod:`mtpeft.serve`), prompting (:mod:`mtpeft.prompting`) and
re-evaluation (``mtpeft eval``) all stand on this package; nothing here imports any of them.
"""

from mtpeft.run.artifacts import TrainedRun, check_complete, load_trained, save_artifacts
from mtpeft.run.build import Assembled, assemble, load_tasks, prompt_format
from mtpeft.run.device import make_accelerator, resolve_precision
from mtpeft.run.evaluation import FinalEvaluation, final_evaluation, run_all, summarise, tune_thresholds
from mtpeft.run.files import RunFiles, is_complete
from mtpeft.run.reevaluate import evaluate_run

__all__ = ["Assembled", "FinalEvaluation", "RunFiles", "TrainedRun", "assemble", "check_complete",
           "evaluate_run", "final_evaluation", "is_complete", "load_tasks", "load_trained", "make_accelerator",
           "prompt_format", "resolve_precision", "run_all", "save_artifacts", "summarise", "tune_thresholds"]
