"""Train the demo model and write it as a model directory ready for ``publish``.

The model is a multinomial logistic regression on scikit-learn's bundled 8x8 digits (no
download). Weights and the held-out batch are saved with ``numpy.savez`` (no pickle), so the
scoring command loads them with numpy alone, as a real model server would load safetensors.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1


def train_model(output_dir: Path, *, padding_mib: int = 0, seed: int = 0) -> Path:
    """Train, then write ``weights.npz``, ``holdout.npz`` and ``model.json`` into ``output_dir``.

    ``padding_mib`` adds a ``padding.bin`` of random bytes so the copy has something to chew on
    (the real model is ~5 GB); the scorer checks it is present and of the declared size.
    """
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    if padding_mib < 0:
        raise ValueError(f"padding_mib must be >= 0, got {padding_mib}")
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data / 16.0, digits.target, test_size=0.25, random_state=seed, stratify=digits.target
    )
    classifier = LogisticRegression(max_iter=2000)
    classifier.fit(x_train, y_train)

    output_dir.mkdir(parents=True, exist_ok=True)
    np.savez(output_dir / "weights.npz", coef=classifier.coef_, intercept=classifier.intercept_)
    np.savez(output_dir / "holdout.npz", x=x_test, y=y_test)
    if padding_mib:
        rng = np.random.default_rng(seed)
        with (output_dir / "padding.bin").open("wb") as padding:
            for _ in range(padding_mib):
                padding.write(rng.bytes(1024 * 1024))
    description = {
        "format_version": FORMAT_VERSION,
        "kind": "multinomial logistic regression on sklearn digits (8x8, scaled to [0, 1])",
        "classes": [int(c) for c in classifier.classes_],
        "train_size": len(y_train),
        "holdout_size": len(y_test),
        "padding_bytes": padding_mib * 1024 * 1024,
    }
    (output_dir / "model.json").write_text(json.dumps(description, indent=2) + "\n")
    return output_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output_dir", type=Path, help="directory to write the model into")
    parser.add_argument("--padding-mib", type=int, default=0, help="extra random MiB (default 0)")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("DEMO_SEED", "0")))
    arguments = parser.parse_args()
    print(train_model(arguments.output_dir, padding_mib=arguments.padding_mib, seed=arguments.seed))


if __name__ == "__main__":
    main()
