"""Layer names that every model package's Keras file keeps, so that the core can read a
saved model back without the builders (they are training code,
``micro_app.training.architectures``)."""

PREDICTIONS = "predictions"  # the classification layer; its input is the features
