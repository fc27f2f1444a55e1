"""The model-copy benchmark: the agent's copy against s5cmd, boto3, awscli and awscrt on loopback.

``python -m bench`` (or ``make bench``) serves a random object from nginx on 127.0.0.1, checks
that every client downloads the right bytes, then times the clients round-robin and writes
``.bench/latest.json``. See ``instance_agent/BENCHMARKING.md`` for what is measured and why.
"""
