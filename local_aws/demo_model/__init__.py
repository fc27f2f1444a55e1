"""The embedded default model of the local run: a digit classifier trained from scikit-learn's
bundled digits data set, stored as plain numpy arrays so scoring needs numpy only."""
