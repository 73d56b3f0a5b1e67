"""Adam without torch._dynamo's import: the one optimizer of the engine (``fit``, the moon fit)."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable

import torch

# torch.optim imports torch._dynamo (about 1 s on a 2-core EPYC, ~9 % of a 3-epoch MNIST run) on the
# first call of Optimizer.add_param_group/zero_grad/state_dict/load_state_dict (torch._disable_dynamo)
# and of every step (_use_grad_for_differentiable), only to keep torch.compile out of them. fit()
# never compiles. So, while torch._dynamo is not loaded: the bookkeeping wrappers get their own
# function as the cached "disabled" one (the attribute torch._compile looks up before importing),
# and DynamoFreeAdam.step runs Adam's undecorated step under no_grad, which is what the decorator does when
# differentiable=False. Where torch lacks these wrappers, both fall back to torch's own path.
_DYNAMO_GUARDED = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


def _skip_dynamo_import() -> None:
    if "torch._dynamo" in sys.modules:
        return
    for name in _DYNAMO_GUARDED:
        fn = getattr(getattr(torch.optim.Optimizer, name, None), "__wrapped__", None)
        if callable(fn) and not hasattr(fn, "__dynamo_disable"):
            setattr(fn, "__dynamo_disable", fn)


# Adam's own step under its decorators; unwrapped here once, because a torch.optim.Adam made elsewhere
# in the process (the Mixtures page's) wraps the class's step again in the optimizer's step hooks.
_ADAM_STEP = inspect.unwrap(torch.optim.Adam.step)


class DynamoFreeAdam(torch.optim.Adam):
    """torch.optim.Adam, same update and state_dict; its step does not import torch._dynamo."""

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        if self.defaults.get("differentiable"):
            return super().step(closure)
        with torch.no_grad():
            return _ADAM_STEP(self, closure)


def adam(params, **kwargs) -> torch.optim.Adam:
    """torch.optim.Adam(params, **kwargs), the same update and state_dict, that leaves torch._dynamo unloaded."""
    _skip_dynamo_import()
    return DynamoFreeAdam(params, **kwargs)
