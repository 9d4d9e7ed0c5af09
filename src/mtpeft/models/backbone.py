"""Load any model as an ENCODER that yields hidden states: encoders as they are, the encoder half of
an encoder-decoder, and decoder-only models without their LM head."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mtpeft.errors import ModelError
from mtpeft.models.families import FAMILIES, Family, family_of, is_decoder_type
from mtpeft.models.zoo import resolve_model


@dataclass
class Backbone:
    """A loaded backbone: the module, its tokenizer, and what kind of model it is."""

    model: Any  # a transformers PreTrainedModel returning last_hidden_state
    tokenizer: Any
    reference: str  # what the config named
    source: str  # the folder or hub id it was loaded from
    model_type: str
    family: Family
    is_decoder: bool
    hidden_size: int
    lm: Any = None  # with ``language_model=True``: the model that generates (see load_backbone)
    seq2seq: bool = False  # an encoder-decoder loaded whole: generation goes through its decoder


def load_backbone(reference: str, dtype: Any = None, language_model: bool = False,
                  attention_dropout: float | None = None) -> Backbone:
    """Load ``reference`` (zoo name, folder or hub id) offline-first as a hidden-state encoder.

    ``attention_dropout`` replaces the model's dropout on attention probabilities (where its config has one);
    where that dropout is not 0, training draws its masks vectorised (:mod:`mtpeft.models.attention`).
    ``language_model=True`` (a run with generation tasks) loads the model with its LM head: a decoder-only
    model as a causal LM whose base module is ``model`` (the method adapts that module, and ``lm``
    generates through the same adapted weights with the pretrained LM head); a T5-family model whole,
    encoder and decoder (``model`` is ``lm``: the method adapts both, classification reads the encoder).
    """
    import torch
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForSeq2SeqLM,
        AutoTokenizer,
        T5EncoderModel,
    )

    source = resolve_model(reference)
    try:
        config = AutoConfig.from_pretrained(source)
        tokenizer = AutoTokenizer.from_pretrained(source)
    except OSError as err:
        raise ModelError(
            f"cannot load model {reference!r} from {source}: {err}. Offline, use a zoo name (see `mtpeft models`) "
            "or a local folder with config.json, weights and tokenizer files."
        ) from err
    family, is_decoder = _kind(config, reference)
    kwargs: dict[str, Any] = {"dtype": dtype or torch.float32, **_dropout_fields(config, attention_dropout)}
    lm = None
    if language_model:
        if not (is_decoder or family == "t5"):
            raise ModelError(f"{reference}: generation tasks need a decoder-only language model (e.g. smollm2-135m) "
                             f"or a T5-family encoder-decoder, but {config.model_type!r} is an encoder; train its "
                             "other tasks in a separate run")
        with quiet_transformers():
            lm = (AutoModelForSeq2SeqLM if family == "t5" else AutoModelForCausalLM).from_pretrained(source, **kwargs)
        model = lm if family == "t5" else lm.base_model
    else:
        with quiet_transformers():
            model = (T5EncoderModel if family == "t5" else AutoModel).from_pretrained(source, **kwargs)
    return _described(model, tokenizer, reference, str(source), family, is_decoder, lm)


def random_backbone(config: Any, tokenizer: Any, reference: str, attention_dropout: float | None = None) -> Backbone:
    """A backbone of ``config``'s architecture and size with random weights, built on the current default device
    (``with torch.device(...)``): speed and memory measured at a real size where its weights are absent
    (``bench/gpu.py``). The same encoder ``load_backbone`` gives: an encoder-decoder's encoder half, a decoder
    without its LM head."""
    from transformers import AutoModel, T5EncoderModel

    family, is_decoder = _kind(config, reference)
    config = copy.deepcopy(config)
    for key, value in _dropout_fields(config, attention_dropout).items():
        setattr(config, key, value)
    with quiet_transformers():
        model = T5EncoderModel(config) if family == "t5" else AutoModel.from_config(config)
    return _described(model, tokenizer, reference, "random initialisation", family, is_decoder)


def _kind(config: Any, reference: str) -> tuple[Family, bool]:
    """The model's family and whether it is decoder-only; encoder-decoders outside the T5 family are refused."""
    model_type = config.model_type
    is_decoder = is_decoder_type(model_type) or (any(
        a.endswith("ForCausalLM") for a in (getattr(config, "architectures", None) or [])
    ) and not config.is_encoder_decoder)
    family = family_of(model_type)
    if config.is_encoder_decoder and family != "t5":
        raise ModelError(f"{reference}: encoder-decoder model_type {model_type!r} is not supported; "
                         f"supported: T5-family ({', '.join(FAMILIES['t5'].model_types)})")
    return family, is_decoder


def _dropout_fields(config: Any, attention_dropout: float | None) -> dict[str, float]:
    """The config fields that replace the model's dropout on attention probabilities (none without one given).

    Dropout on attention probabilities keeps PyTorch's fused attention kernel out of training (the math path
    computes the L x L probabilities per head); these fields change nothing else in the model.
    """
    from mtpeft.models.attention import ATTENTION_DROPOUT_KEYS

    if attention_dropout is None:
        return {}
    return {key: attention_dropout for key in ATTENTION_DROPOUT_KEYS if hasattr(config, key)}


def _described(model: Any, tokenizer: Any, reference: str, source: str, family: Family, is_decoder: bool,
               lm: Any = None) -> Backbone:
    """The loaded ``model`` as a :class:`Backbone`, its attention dropout vectorised (where it has one)."""
    from mtpeft.models.attention import use_vectorised_dropout, use_vectorised_hidden_dropout

    use_vectorised_dropout(lm if lm is not None else model)  # the same attention modules either way
    use_vectorised_hidden_dropout(lm if lm is not None else model)
    if tokenizer.pad_token_id is None:
        # decoders often ship without a pad token; padded positions are masked out anyway
        tokenizer.pad_token = tokenizer.eos_token
    config = model.config
    hidden = getattr(config, "hidden_size", None) or getattr(config, "d_model", None)
    if hidden is None:
        raise ModelError(f"{reference}: config has neither hidden_size nor d_model")
    return Backbone(model, tokenizer, reference, source, config.model_type, family, is_decoder, int(hidden), lm,
                    seq2seq=lm is not None and family == "t5")


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide load reports and progress bars: an encoder loaded from a seq2seq or LM checkpoint
    always 'misses' the decoder or LM head, which is expected, not a problem."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()
