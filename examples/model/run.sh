#!/bin/sh
# The model's entry point: the agent runs `/bin/sh $MODEL_DIR/run.sh` in $MODEL_DIR when no
# model command is configured. MODEL_PYTHON is the Python with PyTorch on a Deep Learning AMI
# (/opt/pytorch/bin/python), else python3.
set -eu
exec "${MODEL_PYTHON:-python3}" score.py
