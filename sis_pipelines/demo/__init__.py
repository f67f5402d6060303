"""The demo: four simulated districts, the last two complete nights."""
