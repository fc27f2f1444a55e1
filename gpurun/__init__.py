"""The platform team's command line for the scheduled GPU model: ``python -m gpurun --help``.

run (start and follow), status (the last runs, with cost), logs (one run's agent and launcher
lines), publish-model (upload a model directory, manifest last), doctor (checks a deployed stack).
"""
