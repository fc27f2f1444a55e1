"""The instance agent: turns a bare GPU instance into a finished, verified model run."""
