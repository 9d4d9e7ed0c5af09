"""Code search in two stages, as in the paper: embed and retrieve, then let the LLM re-rank.

1. Queries and codes are embedded with the causal LM's mean-pooled last hidden states (masked) and
   every query ranks the whole pool by cosine similarity.
2. The top ``rerank_top`` candidates of each query are re-ranked by P(yes) to "Does this code match the
   description?" (label-word scoring, in both modes; ties keep the embedding order). A query's prompts
   share their beginning (demonstrations, question, description), which is computed once.
3. Candidates below the re-ranked ones keep their embedding order, so MRR is over the whole pool, like
   a fine-tuned run's. The embedding-only MRR is reported beside it (``embedding_mrr``).
"""

from __future__ import annotations

import numpy as np

from mtpeft.evaluate.metrics import retrieval_ranks, retrieval_scores
from mtpeft.evaluate.outputs import SplitOutput, prediction_rows
from mtpeft.prompting.assemble import PromptBuilder, prompt_stats
from mtpeft.prompting.config import PromptConfig
from mtpeft.prompting.demonstrations import DemonstrationPicker
from mtpeft.prompting.lm import CausalLM
from mtpeft.prompting.result import TaskResult
from mtpeft.prompting.templates import Template
from mtpeft.tasks import TaskData


def prompt_search(lm: CausalLM, data: TaskData, config: PromptConfig, template: Template) -> TaskResult:
    name, examples = data.spec.name, data.splits[config.split]
    batch, cap = config.batch_size, config.max_code_tokens
    queries = lm.embed([ex.text for ex in examples], cap, batch, desc=f"{name} embed queries")
    codes = lm.embed([ex.text_pair or "" for ex in examples], cap, batch, desc=f"{name} embed codes")
    cosine = (queries @ codes.T).numpy().astype(np.float64)
    top = np.argsort(-cosine, axis=1, kind="stable")[:, : config.rerank_top]

    # the demonstrations depend on the query only, so every candidate of a query is asked the same way
    picker = DemonstrationPicker(data.splits["train"], data.spec.kind, config.shots, config.demonstrations,
                                 config.balanced, config.seed)
    builder = PromptBuilder(lm.tokenizer, template, config.max_length, config.max_code_tokens)
    groups = []
    for i, ex in enumerate(examples):
        demos = picker.pick(ex)
        groups.append([builder.build({"text": ex.text, "text_pair": examples[j].text_pair or ""}, demos)
                       for j in top[i]])
    # a query's prompts differ only from its candidate code on: their shared beginning runs once
    p_yes = np.stack(lm.score_yes_shared([[p.ids for p in g] for g in groups], batch, desc=f"{name} re-rank"))

    output = SplitOutput(data.spec.kind, [ex.id for ex in examples], scores=rerank_scores(cosine, top, p_yes))
    rows = prediction_rows(output)
    for row, rank in zip(rows, retrieval_ranks(cosine), strict=True):
        row["embedding_rank"] = int(rank)
    return TaskResult(output, rows, {"embedding_mrr": retrieval_scores(cosine)["mrr"],
                                     **prompt_stats([p for g in groups for p in g])})


def rerank_scores(cosine: np.ndarray, top: np.ndarray, p_yes: np.ndarray) -> np.ndarray:
    """Scores whose order is: the re-ranked candidates by P(yes) (ties: embedding order), then the rest by
    cosine. Re-ranked candidates get ``2 + M - position`` (> 1 >= any cosine).

    Args:
        cosine: (queries, candidates) embedding similarities in [-1, 1].
        top: (queries, M) candidate indices in embedding order.
        p_yes: (queries, M) the LLM's P(yes) for those candidates.

    Example:
        >>> rerank_scores(np.array([[0.9, 0.5, 0.1]]), np.array([[0, 1]]), np.array([[0.2, 0.7]])).tolist()
        [[3.0, 4.0, 0.1]]
    """
    final = cosine.copy()
    m = top.shape[1]
    for i in range(top.shape[0]):
        order = np.argsort(-p_yes[i], kind="stable")  # stable: equal P(yes) keeps the embedding order
        final[i, top[i, order]] = 2.0 + m - np.arange(m)
    return final
