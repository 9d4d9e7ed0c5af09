"""Zero- and few-shot prompting of a causal LM on the same tasks, metrics and run directory as training."""

from mtpeft.prompting.config import PromptConfig, load_prompt_config
from mtpeft.prompting.run import run_prompting

__all__ = ["PromptConfig", "load_prompt_config", "run_prompting"]
