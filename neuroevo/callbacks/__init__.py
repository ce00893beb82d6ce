"""The callbacks wing: hooks a run calls at each generation, such as
:class:`~neuroevo.callbacks.tensorboard.TensorBoard`."""
