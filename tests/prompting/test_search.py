"""Two-stage search: re-ranked candidates first, the rest of the pool in embedding order below them."""

from __future__ import annotations

import numpy as np

from mtpeft.evaluate.metrics import retrieval_ranks
from mtpeft.prompting.search import rerank_scores


def test_rerank_puts_the_top_m_by_p_yes_first_and_keeps_the_rest_in_embedding_order() -> None:
    cosine = np.array([[0.1, 0.9, 0.8, 0.7, 0.2, 0.3],
                       [0.5, 0.4, 0.3, 0.2, 0.1, 0.0]])
    top = np.argsort(-cosine, axis=1, kind="stable")[:, :3]  # [[1, 2, 3], [0, 1, 2]]
    p_yes = np.array([[0.2, 0.2, 0.9],   # candidate 3 first, then 1 and 2 in embedding order (tie)
                      [0.1, 0.6, 0.3]])
    final = rerank_scores(cosine, top, p_yes)
    assert np.argsort(-final[0], kind="stable").tolist() == [3, 1, 2, 5, 4, 0]
    assert np.argsort(-final[1], kind="stable").tolist() == [1, 2, 0, 3, 4, 5]
    # MRR over the whole pool: query 0's answer (candidate 0) stays last, query 1's (1) moves to the top
    assert retrieval_ranks(final).tolist() == [6, 1]
    assert retrieval_ranks(cosine).tolist() == [6, 2]
