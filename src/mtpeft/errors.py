"""Exceptions for user errors: the CLI prints these as one message and exits with code 2."""

from __future__ import annotations


class MtpeftError(Exception):
    """Base class of every error caused by the user's input (config, data, names)."""


class ConfigError(MtpeftError):
    """One or more problems in a config file or its overrides, reported together."""

    def __init__(self, problems: list[str] | str) -> None:
        # each problem one line, whatever a key or an override carried: a newline in it is shown as \n
        self.problems = [one_line(p) for p in ([problems] if isinstance(problems, str) else problems)]
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return f"invalid config: {self.problems[0]}"
        return "invalid config:\n" + "\n".join(f"  {p}" for p in self.problems)


def one_line(text: str) -> str:
    """``text`` with its line breaks and other control characters escaped (``\\n``), as one line."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class DataError(MtpeftError):
    """A dataset file or folder that cannot be read: the message names the file, line and field."""


class ModelError(MtpeftError):
    """A model that cannot be found or loaded offline."""


class RunError(MtpeftError):
    """A run directory that is missing, incomplete or inconsistent."""
