"""Prompt templates: editable text files, one per task, with ``{text}`` and ``{text_pair}`` placeholders.

The packaged files (``prompting/templates/<task>.txt``) use the paper's wording: a yes/no question about
the code, ending with "Respond with yes or no.". A generation task without a file gets its input followed
by its instruction (the prompt a fine-tuned run trains with). The placeholders are the fields of an
:class:`~mtpeft.tasks.Example`: the code (binary), the two functions (pair), or the query and the code
(retrieval). A task without a packaged file needs one in the config (``templates: {task: path}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mtpeft.errors import ConfigError
from mtpeft.tasks.spec import Example, TaskKind, TaskSpec

FIELDS = ("text", "text_pair")


@dataclass(frozen=True)
class Template:
    """A user message with placeholders; :meth:`render` fills them verbatim (code braces are safe)."""

    text: str
    origin: str  # where it was read from, for messages and the ledger

    def render(self, fields: dict[str, str]) -> str:
        out = self.text
        for name in FIELDS:
            out = out.replace("{" + name + "}", fields.get(name, ""))
        return out


def packaged_templates() -> list[str]:
    """Task names that have a packaged template."""
    folder = resources.files("mtpeft.prompting") / "templates"
    return sorted(p.name.removesuffix(".txt") for p in folder.iterdir() if p.name.endswith(".txt"))


def load_template(spec: TaskSpec, path: Path | None = None) -> Template:
    """The task's template: ``path`` when given, else the packaged one; checked for its placeholders.

    Raises:
        ConfigError: no template for a custom task, an unreadable file, or a missing placeholder.
    """
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"templates.{spec.name}: {path}: no such file")
        template = Template(path.read_text(encoding="utf-8").strip(), str(path))
    elif spec.kind is TaskKind.GENERATION:  # the input, then the instruction a fine-tuned run is trained with
        template = Template("{text}\n\n" + (spec.instruction or f"{spec.name}:"), f"instruction:{spec.name}")
    else:
        packaged = resources.files("mtpeft.prompting") / "templates" / f"{spec.name}.txt"
        if not packaged.is_file():
            raise ConfigError(
                f"tasks.{spec.name}: no packaged prompt template (packaged: {', '.join(packaged_templates())}); "
                f"give one with `templates: {{{spec.name}: FILE}}`, a yes/no question with the placeholders "
                f"{', '.join('{' + f + '}' for f in needed_fields(spec.kind))}"
            )
        template = Template(packaged.read_text(encoding="utf-8").strip(), f"packaged:{spec.name}.txt")
    missing = [f for f in needed_fields(spec.kind) if "{" + f + "}" not in template.text]
    if missing:
        raise ConfigError(f"templates.{spec.name}: {template.origin} lacks the placeholder(s) "
                          f"{', '.join('{' + f + '}' for f in missing)} that a {spec.kind} task fills")
    return template


def needed_fields(kind: TaskKind) -> tuple[str, ...]:
    return ("text",) if kind in (TaskKind.BINARY, TaskKind.GENERATION) else FIELDS


def fields_of(example: Example) -> dict[str, str]:
    """The placeholder values of an example."""
    return {"text": example.text, "text_pair": example.text_pair or ""}
