"""Jobs, the nightly schedule and the sensors that keep tenants and terms in step."""
