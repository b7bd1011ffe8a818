"""Training, evaluation, export and explanation of model packages (imports TensorFlow lazily)."""
