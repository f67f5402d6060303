"""Grade passback assets: the Canvas gradebook snapshot, the OneRoster payloads, the push."""
