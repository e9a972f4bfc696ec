"""Qt-free view-models: the state and commands behind the dock widgets.

No napari or Qt import here; the docks are thin views that bind to these and
the unit tests drive them without a viewer.
"""

from napari_gandl.viewmodels.site_table import SiteTable

__all__ = ["SiteTable"]
