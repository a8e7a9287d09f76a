"""The read side, at the flow's end: stats, lift, records, guardrails and first steps, read from what
the flow stored; the merchant's API and pages show them."""
