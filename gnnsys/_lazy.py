"""Names a package imports on first use (PEP 562), so that importing it stays cheap.

Each lazy package lists ``name -> module`` and takes its ``__getattr__`` and ``__dir__`` from
``lazy_names``: a name resolves to the module itself when the module is the package's
submodule of that name (``gnnsys.ops``), else to the module's attribute; it is then cached in
the package's namespace, and ``dir()`` (tab completion) lists the names not yet loaded.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List, Tuple


def lazy_names(
    package: str, table: Dict[str, str], namespace: Dict[str, Any]
) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """(``__getattr__``, ``__dir__``) for ``package`` (its ``globals()`` as ``namespace``).

    Example:
        >>> __getattr__, __dir__ = lazy_names(__name__, {"spmm": "gnnsys.ops.sparse"}, globals())
    """

    def __getattr__(name: str) -> Any:
        mod = table.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(mod)
        value = module if mod == f"{package}.{name}" else getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> List[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
