"""One client module per outside system, each behind a Protocol, each given its httpx client."""
