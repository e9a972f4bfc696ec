"""The site-table column names every dock uses.

Docks find each other's results only through these names and the
:class:`~napari_gandl.viewmodels.SiteTable` events, never by importing each
other. Metadata columns come from the plate reader; result columns are written
by the analysis docks (one writer each).
"""

from __future__ import annotations

import re

# ---------------------------------------------------------------- metadata (the plate reader)
SITE_ID = "site_id"
WELL_ID = "well_id"
EXPERIMENT = "experiment"
PLATE = "plate"
WELL = "well"
SITE = "site"
CELL_TYPE = "cell_type"
CONDITION = "disease_condition"
COMPOUND = "treatment"
DOSE = "treatment_conc"
PROBLEM = "problem"          # empty when all of the site's files were found

#: RxRx19a's disease conditions (the controls; compound wells are ACTIVE plus a treatment)
MOCK = "Mock"
UV = "UV Inactivated SARS-CoV-2"
ACTIVE = "Active SARS-CoV-2"

#: metadata carried into an analysis beside the features
META = (SITE_ID, WELL_ID, CELL_TYPE, EXPERIMENT, PLATE, WELL, SITE, CONDITION, COMPOUND, DOSE)
#: the columns a batch effect can be removed along (gandl train --align, gandl align --batch)
BATCHES = (PLATE, EXPERIMENT)

# ---------------------------------------------------------------- results (the analysis docks)
SELECTED = "selected"        # bool: the sites a lasso (or a user) selected; default name of a selection
E2_SCORE = "e2_score"        # float: the site's E2 on-perturbation score (dose-response dock)
HIT = "hit"                  # bool: the site's compound x cell type is a dose-response hit
SVM_PREFIX = "svm_"          # float: an SVM's decision score, one column per task


def slug(text: str) -> str:
    """A column-name-safe form of ``text`` ("C+ vs C- (merged)" -> "Cpos_vs_Cneg_merged")."""
    return re.sub(r"[^0-9A-Za-z+-]+", "_", text).strip("_").replace("+", "pos").replace("-", "neg")


def svm_score(task: str) -> str:
    """The decision-score column of the SVM task named ``task``."""
    return SVM_PREFIX + slug(task)


def is_score(name: str) -> bool:
    """A continuous per-site result column (SVM decision score or E2 score)."""
    return isinstance(name, str) and (name.startswith(SVM_PREFIX) or name == E2_SCORE)
