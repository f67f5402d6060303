"""Grade passback assets: the Canvas gradebook snapshot, the OneRoster payloads, the push."""

from .assets import GRADEBOOK, PAYLOADS, PUSH, canvas_gradebook, gpb_assets, gpb_payloads, gpb_push

__all__ = [
    "GRADEBOOK",
    "PAYLOADS",
    "PUSH",
    "canvas_gradebook",
    "gpb_assets",
    "gpb_payloads",
    "gpb_push",
]
