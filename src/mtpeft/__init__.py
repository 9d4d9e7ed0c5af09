"""mtpeft: multi-task parameter-efficient fine-tuning of code models."""
__version__ = "0.1.0"
