"""The mirror hunt: fingerprints, candidates, tree verification, verdicts, networks, recheck."""
