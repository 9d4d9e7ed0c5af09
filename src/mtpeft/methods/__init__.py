"""Fine-tuning methods behind one interface; importing this package registers them all."""

from mtpeft.methods import bottleneck, full, hf_peft  # noqa: F401  (registration)
from mtpeft.methods.base import (
    METHODS,
    Method,
    MethodConfig,
    can_merge,
    check_added_parameters,
    create_method,
    find_targets,
    method_table,
    methods_where,
    register_method,
)

__all__ = ["METHODS", "Method", "MethodConfig", "can_merge", "check_added_parameters", "create_method",
           "find_targets", "method_table", "methods_where", "register_method"]
