"""Tokens that say whether cached work still belongs to the same tensors.

Caches keyed on user tensors (a Graph built from ``edge_index`` and its weights, a sampling
graph built from an edge column) must notice when a tensor is replaced or changed in place.
Comparing ``id(t)`` is not enough: once the old tensor is collected, a new one is often
allocated at the same address and gets the same id, and the cache would hand back work done
for the old values (seen: a ``NeighborLoader`` given new edge weights sampled with the old
ones). A token holds a weak reference to each tensor (identity, without keeping it alive) and
its ``_version`` (in-place changes).
"""

from __future__ import annotations

import weakref
from typing import Any, Optional, Tuple

_Entry = Optional[Tuple[Any, int]]


class _Held:
    """A strong reference for what takes no weak one (e.g. a list): kept alive by the token,
    it cannot be collected and its id reused while the token lives."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __call__(self) -> Any:
        return self.obj


def _ref(obj: Any) -> Any:
    try:
        return weakref.ref(obj)
    except TypeError:
        return _Held(obj)


def tensors_token(*tensors: Any) -> Tuple[_Entry, ...]:
    """A token of ``tensors`` (None entries allowed) for ``token_matches``.

    Example:
        >>> import torch
        >>> t = torch.zeros(3)
        >>> tok = tensors_token(t, None)
        >>> token_matches(tok, t, None), token_matches(tok, torch.zeros(3), None)
        (True, False)
    """
    return tuple(None if t is None else (_ref(t), int(getattr(t, "_version", 0))) for t in tensors)


def token_matches(token: Tuple[_Entry, ...], *tensors: Any) -> bool:
    """Whether ``tensors`` are the very objects ``token`` was made of, unchanged since."""
    if len(token) != len(tensors):
        return False
    for entry, t in zip(token, tensors):
        if entry is None or t is None:
            if entry is not None or t is not None:
                return False
            continue
        ref, version = entry
        if ref() is not t or int(getattr(t, "_version", 0)) != version:
            return False
    return True
