"""HTML pages of the analysis, rendered from the jinja2 templates in ``templates/``.

Autoescaping is on: every value a template prints (file names, compound and
cell-type names, error messages) is escaped, so metadata holding ``<`` or
``&`` shows as text and cannot change the page.
"""

from __future__ import annotations

import math

import jinja2

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("napari_gandl.analysis", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def significant(value, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` significant digits, missing or non-finite numbers empty."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


_ENVIRONMENT.filters["significant"] = significant


def render(template: str, **context) -> str:
    """The page ``templates/<template>`` filled in with ``context``."""
    return _ENVIRONMENT.get_template(template).render(**context)
