"""The ``mtpeft`` command: one thin function per verb, no logic of its own.

Known user errors (bad config, bad data, unknown names, incomplete runs) print one message on
stderr and exit with code 2; anything else keeps its traceback.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from mtpeft.errors import MtpeftError

# transformers 5 deprecation chatter that peft triggers on every model; not actionable for a user
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
warnings.filterwarnings("ignore", message=".*past_key_values.*", category=FutureWarning)
warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Multi-task parameter-efficient fine-tuning of code models.")
data_app = typer.Typer(no_args_is_help=True, help="Readers, builders and dataset statistics.")
app.add_typer(data_app, name="data")

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn known user errors into a message on stderr and exit code 2."""
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MtpeftError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
    return wrapper  # type: ignore[return-value]


Overrides = Annotated[list[str] | None, typer.Argument(help="key=value overrides, e.g. train.lr=1e-4 method=adapter")]


@app.command()
@user_errors
def train(
    config: Annotated[Path, typer.Argument(help="Run config (YAML).")],
    overrides: Overrides = None,
    resume: Annotated[bool, typer.Option(help="Continue from the run's last checkpoint.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory.")] = False,
) -> None:
    """Train one shared module + task heads over the config's tasks; writes a run directory."""
    from mtpeft.config import load_config
    from mtpeft.console import print_run_summary
    from mtpeft.train import train as run_training

    run_dir = run_training(load_config(config, overrides), resume=resume, overwrite=overwrite)
    print_run_summary(run_dir)


@app.command("eval")
@user_errors
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    task: Annotated[str | None, typer.Option(help="Evaluate this task only (needed with --path).")] = None,
    source: Annotated[str | None, typer.Option(help="Reader for --path (default: the task's own).")] = None,
    path: Annotated[str | None, typer.Option(help="Data the run never saw, read with --source.")] = None,
    split: Annotated[str, typer.Option(help="validation, test, or all (every example of --path).")] = "test",
) -> None:
    """Reload a run from its files and evaluate it (recomputes metrics.json, or scores new data)."""
    from mtpeft.console import print_metrics
    from mtpeft.evaluate_run import evaluate_run

    print_metrics(evaluate_run(run, task=task, source=source, path=path, split=split))


@app.command()
@user_errors
def study(
    config: Annotated[Path, typer.Argument(help="Study config (YAML): a base run config and the axes to sweep.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides of the study config.")] = None,
    shard: Annotated[str, typer.Option(help="Run only shard i/n of the grid (machines sharing one study).")] = "1/1",
    dry_run: Annotated[bool, typer.Option(help="List the runs and whether they are finished; train nothing.")] = False,
) -> None:
    """Run every unfinished run of a study grid (SFT/MFT x methods x models x seeds), then write its report."""
    from mtpeft.console import print_study_plan
    from mtpeft.study import expand, load_study, parse_shard, run_study, shard_runs

    spec = load_study(config, overrides)
    part = parse_shard(shard)
    if dry_run:
        print_study_plan(shard_runs(expand(spec), *part))
        return
    outcome = run_study(spec, part)
    typer.echo(f"{len(outcome.trained)} trained, {len(outcome.skipped)} already finished, of {outcome.planned} "
               f"runs in shard {shard}" + (f"; report: {outcome.report}" if outcome.report else ""))


@app.command()
@user_errors
def prompt(
    config: Annotated[Path, typer.Argument(help="Prompt config (YAML): a causal LM, tasks, shots, mode.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides, e.g. shots=4 mode=score")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory.")] = False,
) -> None:
    """Prompt a causal LM zero- or few-shot on the config's tasks (no training); writes a run directory."""
    from mtpeft.console import print_prompt_summary
    from mtpeft.prompting import load_prompt_config, run_prompting

    print_prompt_summary(run_prompting(load_prompt_config(config, overrides), overwrite=overwrite))


@app.command()
@user_errors
def report(study_dir: Annotated[Path, typer.Argument(help="Study directory (with runs/).")]) -> None:
    """Rebuild a study's results.csv, tables, plots and report.md from its run directories alone."""
    from mtpeft.study import write_report

    typer.echo(f"wrote {write_report(study_dir)}")


@app.command()
@user_errors
def models() -> None:
    """The offline model zoo: what each model is and whether it is installed."""
    from mtpeft.console import print_models

    print_models()


@data_app.command("list")
@user_errors
def data_list() -> None:
    """Built-in tasks, readers and builders."""
    from mtpeft.console import print_sources

    print_sources()


@data_app.command("stats")
@user_errors
def data_stats(
    config: Annotated[Path, typer.Argument(help="Run config (YAML).")],
    overrides: Overrides = None,
    tokenizer: Annotated[bool, typer.Option(help="Also token-length percentiles with the config's model.")] = True,
) -> None:
    """Per task and split: examples, label balance, token-length percentiles."""
    from mtpeft.config import load_config
    from mtpeft.console import print_stats
    from mtpeft.data_stats import task_stats

    print_stats(task_stats(load_config(config, overrides), with_tokens=tokenizer))


@data_app.command("preview")
@user_errors
def data_preview(
    config: Annotated[Path, typer.Argument(help="Run config (YAML).")],
    task: Annotated[str, typer.Option(help="Task to preview.")],
    n: Annotated[int, typer.Option("-n", help="Examples to show.")] = 3,
    split: Annotated[str, typer.Option(help="Split to preview.")] = "train",
) -> None:
    """Show the first examples of a task as the model will see them."""
    from mtpeft.config import load_config
    from mtpeft.console import print_preview
    from mtpeft.data_stats import preview

    print_preview(preview(load_config(config), task, split, n))


@data_app.command("build-search")
@user_errors
def data_build_search(
    out: Annotated[Path, typer.Option(help="Output jsonl (CodeSearchNet schema).")],
    source: Annotated[Path | None, typer.Option(help="Python source folder (default: the standard library).")] = None,
) -> None:
    """Mine (docstring sentence, code) pairs from Python source, CodeSearchNet-style."""
    from mtpeft.data_stats import build_search_file

    count = build_search_file(source, out)
    typer.echo(f"wrote {count} functions to {out}")


