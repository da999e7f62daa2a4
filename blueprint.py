"""BluePrint loading script, for datasets <= 3.6 (``trust_remote_code=True``).

    datasets.load_dataset("blueprint.py", "25_clusters", data_dir="path/to/data", trust_remote_code=True)

datasets 4 and later do not run loading scripts: load an exported folder directly
(``load_dataset("path/to/exported", "25_clusters")``), or instantiate the builder
(``blueprint.data.BluePrint(config_name=..., data_dir=..., dataset_name="blueprint")``).
The builder lives in the installed ``blueprint`` package; this file only names it.
"""

import datasets  # noqa: F401  (datasets 3.x checks the script's imports)

from blueprint.data import BluePrint as _BluePrint


class BluePrint(_BluePrint):
    """The BluePrint builder (see ``blueprint.data``)."""
