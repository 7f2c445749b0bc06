"""Generator of realistic sample extracts (claims and contracts) for the landing folder.

``from sample_data import generate`` gives the function (``sample_data.generate.generate``).
"""

import warnings

# `python -m sample_data.generate` imports this package (and so the submodule) before running the submodule as
# __main__; runpy then warns about it. Harmless here: the module has no import-time side effects.
warnings.filterwarnings(
    "ignore", message=r".*'sample_data\.generate' found in sys\.modules.*", category=RuntimeWarning
)

from sample_data.generate import GeneratedSet, generate  # noqa: E402

__all__ = ["GeneratedSet", "generate"]
