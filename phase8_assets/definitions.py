"""The code location: assembles assets, jobs and resources; nothing is defined here."""

import dagster as dg

from phase8_assets.defs import drills, evidence, perf, slo
from phase8_assets.defs.jobs import release_gate
from phase8_assets.defs.resources import default_resources

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([evidence, perf, slo, drills]),
    jobs=[release_gate, drills.drill_cadence_job],
    schedules=[drills.drill_cadence_reminder],
    resources=default_resources(),
)
