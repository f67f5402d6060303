"""Grade passback: Canvas gradebook to OneRoster categories, lineItems and results."""
