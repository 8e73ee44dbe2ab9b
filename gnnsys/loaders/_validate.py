"""The loaders' id validation: ``check_ids``, re-exported from ``gnnsys._checks``.

``check_ids`` is ``gnnsys._checks.check_index`` with messages worded for table rows (integer
dtype, 1-D, device, range; a serial numba min/max, no thread pool woken on the hot path). The
one implementation lives in ``gnnsys._checks`` so that lower layers (``gnnsys.features``) need
not import from ``gnnsys.loaders``; this module keeps the loaders' import path.
"""

from __future__ import annotations

from gnnsys._checks import check_ids

__all__ = ["check_ids"]
