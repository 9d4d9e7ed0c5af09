"""The ``mtpeft`` command: one thin function per verb, no logic of its own.

Known user errors (bad config, bad data, unknown names, incomplete runs) print one message on
stderr and exit with code 2; anything else keeps its traceback.
"""

from __future__ import annotations

import os
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
AsJson = Annotated[bool, typer.Option("--json", help="Print the same numbers as JSON (for scripts).")]
Backend = Annotated[str, typer.Option(help="What computes: torch (the run's model), onnx or onnx-int8 (its export in "
                                           "RUN/export/onnx/, through ONNX Runtime).")]
BaseModelPath = Annotated[str | None, typer.Option(
    "--base-model", metavar="PATH", show_default=False,
    help="The base model's folder (or a zoo name), for a run copied from another machine whose recorded base is "
         "not here; else $MTPEFT_BASE_MODEL, then the run's recorded folder, then its zoo name (docs/serving.md).")]


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
    from mtpeft.run.device import is_main_process, leave_process_group
    from mtpeft.train import train as run_training

    run_dir = run_training(load_config(config, overrides), resume=resume, overwrite=overwrite)
    if is_main_process():
        print_run_summary(run_dir)
    leave_process_group()


@app.command("eval")
@user_errors
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    task: Annotated[str | None, typer.Option(help="Evaluate this task only (needed with --path).")] = None,
    source: Annotated[str | None, typer.Option(help="Reader for --path (default: the task's own).")] = None,
    path: Annotated[str | None, typer.Option(help="Data the run never saw, read with --source.")] = None,
    split: Annotated[str, typer.Option(help="validation, test, or all (every example of --path).")] = "test",
    backend: Backend = "torch",
    base_model: BaseModelPath = None,
    as_json: AsJson = False,
) -> None:
    """Reload a run from its files and evaluate it (recomputes metrics.json, or scores new data)."""
    from mtpeft.console import print_metrics
    from mtpeft.export import onnx_backend
    from mtpeft.run import evaluate_run

    model = onnx_backend(run, backend)
    metrics = evaluate_run(run, task=task, source=source, path=path, split=split, model=model, base_model=base_model)
    print_metrics(metrics, as_json=as_json)


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
    typer.echo(f"{len(outcome.trained)} trained, {len(outcome.skipped)} already finished, {len(outcome.busy)} being "
               f"trained elsewhere, of {outcome.planned} "
               f"runs in shard {shard}" + (f"; report: {outcome.report}" if outcome.report else ""))


@app.command()
@user_errors
def pairs(
    config: Annotated[Path, typer.Argument(help="Study config (YAML); its settings become sft + pair + mft.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides of the study config.")] = None,
    groups: Annotated[int, typer.Option(help="Budget: recommend a partition into at most this many groups.")] = 2,
    train_groups: Annotated[bool, typer.Option(help="Also train the recommended groups and compare them.")] = False,
    estimate_steps: Annotated[list[int] | None, typer.Option(help="Warm-up steps of the cheap affinity estimates "
                                                        "(repeat the option to compare warm-up lengths).")] = None,
    shard: Annotated[str, typer.Option(help="Train only shard i/n; analyse once every shard is done.")] = "1/1",
) -> None:
    """Train every task alone, every pair and all together; transfer matrix, cheap estimates, grouping."""
    from mtpeft.study import load_study, parse_shard
    from mtpeft.study.pairs import data_quality, run_pairs
    from mtpeft.study.pairs_report import write_pairs_report

    spec = load_study(config, overrides)
    analyses = run_pairs(spec, groups, train_groups, tuple(estimate_steps or [20]), parse_shard(shard))
    if analyses is None:
        typer.echo(f"shard {shard} trained; run `mtpeft pairs {config}` (no --shard) once every shard is done")
        return
    typer.echo(f"wrote {write_pairs_report(spec.study_dir(), analyses, data_quality(spec))}")


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
def report(study_dir: Annotated[Path, typer.Argument(help="Study directory (with runs/).")],
           as_json: AsJson = False) -> None:
    """Rebuild a study's results.csv, tables, plots and report.md from its run directories alone."""
    from mtpeft.console import print_report_tables
    from mtpeft.study import build_report

    built = build_report(study_dir)
    if as_json:
        print_report_tables(built.tables)
    else:
        typer.echo(f"wrote {built.path}")


@app.command()
@user_errors
def compare(
    run_a: Annotated[Path, typer.Argument(help="Run directory A.")],
    runs_b: Annotated[list[Path] | None, typer.Argument(
        help="Run directories B: one run, or several that split A's tasks between them (one per task). "
             "None: A's lexical baseline.")] = None,
    split: Annotated[str, typer.Option(help="validation or test.")] = "test",
    metric: Annotated[str | None, typer.Option(
        help="Compare by this metric instead of each task's main one, e.g. roc_auc or average_precision "
             "(threshold-free) for classification tasks; tasks without it are skipped.")] = None,
    pool: Annotated[bool, typer.Option(
        "--pool", help="Every run given is one fold of a group k-fold (tasks.N.folds): pool their predictions "
                       "(disjoint examples) as A and compare them with their lexical baselines, pooled.")] = False,
    as_json: AsJson = False,
) -> None:
    """A against B task by task on the same examples: A - B with a 95% bootstrap interval and paired p-values."""
    from mtpeft.console import print_comparison
    from mtpeft.study.run_comparison import compare_runs

    a, b = ([run_a, *(runs_b or [])], []) if pool else (run_a, runs_b or [])
    print_comparison(compare_runs(a, b, split=split, metric=metric), as_json)


@app.command()
@user_errors
def models(as_json: AsJson = False) -> None:
    """The offline model zoo: what each model is and whether it is installed."""
    from mtpeft.console import print_models

    print_models(as_json)


@app.command()
@user_errors
def methods(as_json: AsJson = False) -> None:
    """The fine-tuning methods: what each stores, whether it generates or merges, where it goes by default."""
    from mtpeft.console import print_methods

    print_methods(as_json)


@app.command()
@user_errors
def predict(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    task: Annotated[str, typer.Option(help="Task whose head answers.")],
    input_file: Annotated[str, typer.Option("--input", help="jsonl of inputs ({code} | {code1, code2} | {query}, "
                                                             "optional id); - for stdin.")] = "-",
    output: Annotated[str, typer.Option(help="jsonl of answers, one per input line; - for stdout.")] = "-",
    top_k: Annotated[int, typer.Option(min=1, help="Hits per query (retrieval tasks).")] = 10,
    pool: Annotated[str | None, typer.Option(help="jsonl of {id, code} to search (retrieval tasks).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Inputs per forward pass.")] = 32,
    merge: Annotated[bool, typer.Option(help="Fold LoRA/IA3 into the base weights first.")] = False,
    backend: Backend = "torch",
    base_model: BaseModelPath = None,
) -> None:
    """Answer a jsonl file of inputs with one task's head: label + probability, or top-k hits."""
    from mtpeft.serve import predict_file

    count = predict_file(run, task, input_file, output, top_k=top_k, pool=pool, batch_size=batch_size, merge=merge,
                         backend=backend, base_model=base_model)
    if output != "-":
        typer.echo(f"wrote {count} answers to {output}", err=True)


@app.command()
@user_errors
def serve(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to bind.")] = 8000,
    api_key: Annotated[str | None, typer.Option(envvar="MTPEFT_API_KEY", show_default=False,
                                                help="Require this key in the X-API-Key header.")] = None,
    merge: Annotated[bool, typer.Option(help="Fold LoRA/IA3 into the base weights (faster, same outputs).")] = False,
    max_batch: Annotated[int, typer.Option(min=1, help="Items per forward pass.")] = 32,
    max_wait_ms: Annotated[float, typer.Option(min=0.1, help="How long a batch waits for more items.")] = 5.0,
    max_items: Annotated[int, typer.Option(min=1, help="Items per /v1/predict request.")] = 64,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Bytes per request body.")] = 4 * 2**20,
    header_timeout_s: Annotated[float, typer.Option(min=0.1, help="Seconds a client has to send a request's "
                                                                   "headers; then the connection is closed.")] = 10.0,
    body_timeout_s: Annotated[float, typer.Option(min=0.1, help="Seconds a client has to send a request's body "
                                                                 "(408 after).")] = 60.0,
    backend: Backend = "torch",
    base_model: BaseModelPath = None,
) -> None:
    """Serve every task of a run over HTTP (JSON API; docs at /docs)."""
    from mtpeft.serve import Limits
    from mtpeft.serve import serve as run_server

    if api_key is None and os.environ.get("MTPEFT_API_KEY") == "":
        api_key = ""  # click reads an empty variable as unset; create_app refuses an empty key instead
    limits = Limits(max_batch=max_batch, max_wait_ms=max_wait_ms, max_items=max_items, max_body_bytes=max_body_bytes,
                    header_timeout_s=header_timeout_s, body_timeout_s=body_timeout_s)
    run_server(run, host, port, api_key=api_key, merge=merge, limits=limits, backend=backend, base_model=base_model)


@app.command()
@user_errors
def export(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    format: Annotated[str, typer.Option("--format", help="onnx (every task, one graph), sentence-transformers (a "
                                                         "retrieval task) or peft (a classification task).")],
    task: Annotated[str | None, typer.Option(help="The task to export (sentence-transformers, peft).")] = None,
    quantize: Annotated[str | None, typer.Option(help="int8: also write an int8 graph (onnx).")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder to write (default: RUN/export/<format>/).")] = None,
    base_model: BaseModelPath = None,
) -> None:
    """Export a finished run for another engine: ONNX Runtime, sentence-transformers or peft (docs/export.md)."""
    from mtpeft.export import export_run

    typer.echo(f"wrote {export_run(run, format, task=task, quantize=quantize, out=out, base_model=base_model)}")


@data_app.command("list")
@user_errors
def data_list(as_json: AsJson = False) -> None:
    """Built-in tasks, readers and builders."""
    from mtpeft.console import print_sources

    print_sources(as_json)


@data_app.command("stats")
@user_errors
def data_stats(
    config: Annotated[Path, typer.Argument(help="Run config (YAML).")],
    overrides: Overrides = None,
    tokenizer: Annotated[bool, typer.Option(help="Also token-length percentiles with the config's model.")] = True,
    as_json: AsJson = False,
) -> None:
    """Per task and split: examples, label balance, token-length percentiles."""
    from mtpeft.config import load_config
    from mtpeft.console import print_stats
    from mtpeft.data_stats import task_stats

    print_stats(task_stats(load_config(config, overrides), with_tokens=tokenizer), as_json)


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


