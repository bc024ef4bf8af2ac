"""The code location: assembles assets, jobs and resources; nothing is defined here."""

import dagster as dg

from phase8_assets.defs import evidence
from phase8_assets.defs.jobs import release_gate
from phase8_assets.defs.resources import default_resources

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([evidence]),
    jobs=[release_gate],
    resources=default_resources(),
)
