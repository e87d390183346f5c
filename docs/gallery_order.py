"""Order of the gallery (imported by conf.py; a module so the config pickles)."""

ORDER = [
    "plot_quickstart.py",
    "plot_pandas_column_transformer.py",
    "plot_noise_tradeoff.py",
    "plot_uniform_prior.py",
    "plot_custom_prior.py",
    "plot_neighbor_views.py",
    "plot_outliers.py",
    "plot_conditional_generation.py",
]


def example_order(filename):
    """First steps, then targets, model selection and uses; unlisted ones last."""
    return (ORDER.index(filename) if filename in ORDER else len(ORDER), filename)
