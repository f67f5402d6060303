"""The OneRoster collections as assets, one per collection, with their quarantine checks."""

from .assets import QUARANTINE_CHECK, build_collection_asset, oneroster_assets

__all__ = ["QUARANTINE_CHECK", "build_collection_asset", "oneroster_assets"]
