"""phase8_assets: the Phase 8 reliability and operability program as a Dagster code location."""

__version__ = "0.1.0"
