"""Deterministic, group-aware splits and stratified caps.

Sources without a published split are split here, seeded, so a run is reproducible; examples that
share a ``group`` (both versions of a patched function, all tests of a project when asked) land in
the same split so that nothing leaks from train to test.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from collections import defaultdict

import numpy as np

from mtpeft.tasks.spec import Example

SPLIT_NAMES = ("train", "validation", "test")


def split_examples(
    examples: list[Example], ratios: tuple[float, float, float], seed: int
) -> dict[str, list[Example]]:
    """Split by group (each example is its own group when ``group`` is None), stratified by label.

    Groups are assigned greedily, largest first, to the split furthest below its target share of
    each label, so label balance and split sizes both follow ``ratios`` even with uneven groups.
    """
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        groups[_group_key(ex)].append(ex)
    rng = random.Random(seed)
    keys = sorted(groups, key=lambda k: _stable_hash(k, seed))
    rng.shuffle(keys)
    keys.sort(key=lambda k: -len(groups[k]))  # stable: ties keep the seeded order

    labels = sorted({ex.label for ex in examples}, key=lambda x: (x is None, x))
    totals = {lab: sum(ex.label == lab for ex in examples) for lab in labels}
    filled = {s: {lab: 0 for lab in labels} for s in SPLIT_NAMES}
    out: dict[str, list[Example]] = {s: [] for s in SPLIT_NAMES}
    for key in keys:
        members = groups[key]
        counts = {lab: sum(ex.label == lab for ex in members) for lab in labels}

        def deficit(split: str, counts: dict = counts) -> float:
            share = ratios[SPLIT_NAMES.index(split)]
            return sum(
                (share * totals[lab] - filled[split][lab]) * counts[lab] / max(totals[lab], 1) for lab in labels
            )

        best = max((s for s, r in zip(SPLIT_NAMES, ratios, strict=True) if r > 0), key=deficit)
        out[best].extend(members)
        for lab in labels:
            filled[best][lab] += counts[lab]
    return {s: _seeded_order(v, seed) for s, v in out.items()}


def fold_split(examples: list[Example], folds: int, fold: int, seed: int) -> dict[str, list[Example]]:
    """Group k-fold (scikit-learn's ``StratifiedGroupKFold``): fold ``fold`` is the test split.

    The next fold (cyclically) is the validation split and the rest train, so running every ``fold``
    from 0 to ``folds - 1`` tests each group (each project, with ``split_by: project``) exactly once.
    ``split_examples`` cannot rotate like this: it deals the largest groups first, so its seed only
    breaks ties between groups of equal size.
    """
    if not 0 <= fold < folds:
        raise ValueError(f"fold {fold} is not one of 0..{folds - 1}")
    groups = [_group_key(ex) for ex in examples]
    labels = [ex.label if ex.label is not None else 0 for ex in examples]
    if len(set(groups)) < folds:
        raise ValueError(f"{len(set(groups))} groups cannot fill {folds} folds")
    from sklearn.model_selection import StratifiedGroupKFold  # imported here: scikit-learn is slow to import

    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "the least populated class has fewer members than folds": expected here
        warnings.simplefilter("ignore", UserWarning)
        parts = [test for _, test in splitter.split(np.zeros(len(examples)), labels, groups)]
    validation = (fold + 1) % folds
    train = [i for k, part in enumerate(parts) if k not in (fold, validation) for i in part]
    return {s: _seeded_order([examples[i] for i in chosen], seed)
            for s, chosen in zip(SPLIT_NAMES, (train, parts[validation], parts[fold]), strict=True)}


def cap_stratified(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    """At most ``limit`` examples, keeping each label's share (largest-remainder rounding)."""
    if limit is None or len(examples) <= limit:
        return examples
    by_label: dict[object, list[Example]] = defaultdict(list)
    for ex in examples:
        by_label[ex.label].append(ex)
    quotas = {lab: limit * len(v) / len(examples) for lab, v in by_label.items()}
    take = {lab: int(q) for lab, q in quotas.items()}
    for lab in sorted(quotas, key=lambda k: take[k] - quotas[k])[: limit - sum(take.values())]:
        take[lab] += 1
    for lab in take:  # never drop a label entirely when the cap allows keeping it
        if take[lab] == 0 and limit >= len(by_label):
            donor = max(take, key=take.get)
            take[donor] -= 1
            take[lab] = 1
    rng = random.Random(seed)
    kept: list[Example] = []
    for lab in sorted(by_label, key=lambda x: (x is None, x)):
        pool = sorted(by_label[lab], key=lambda ex: _stable_hash(ex.id, seed))
        rng.shuffle(pool)
        kept.extend(pool[: take[lab]])
    order = {ex.id: i for i, ex in enumerate(examples)}
    return sorted(kept, key=lambda ex: order[ex.id])


def _group_key(ex: Example) -> str:
    """The example's group; an example without one is a group of its own."""
    return ex.group if ex.group is not None else f"\0{ex.id}"


def _seeded_order(examples: list[Example], seed: int) -> list[Example]:
    return sorted(examples, key=lambda ex: _stable_hash(ex.id, seed))


def _stable_hash(text: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{text}".encode()).hexdigest()
