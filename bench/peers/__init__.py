"""ringback beside the job queues a user would pick instead: ``python -m bench.peers``."""
