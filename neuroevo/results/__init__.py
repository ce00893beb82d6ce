"""The results wing: a finished run's model loaded for use (:mod:`~neuroevo.results.model`),
predictions on raw data (:mod:`~neuroevo.results.predict`), ONNX and TorchScript exports
(:mod:`~neuroevo.results.export`), plots (:mod:`~neuroevo.results.plots`) and the HTML report
(:mod:`~neuroevo.results.report`). Reads run directories; never imports the search wing."""
