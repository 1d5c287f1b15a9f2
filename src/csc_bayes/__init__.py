"""csc_bayes: Bayesian multilevel models of children's social care across English local authorities."""

__version__ = "0.1.0"
