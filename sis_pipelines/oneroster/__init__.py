"""OneRoster client, normalisation and validation: plain Python, no Dagster."""
