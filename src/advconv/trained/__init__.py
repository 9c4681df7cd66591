"""Using a trained net: finding it by name or path, its files, scoring, prediction, export, figures."""
