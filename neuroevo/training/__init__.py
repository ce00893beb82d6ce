"""The training wing: task kinds (:mod:`~neuroevo.training.kinds`), a genome as a torch module
(:mod:`~neuroevo.training.network`), the weighted mixer and its rules
(:mod:`~neuroevo.training.mixer`), the batched stack (:mod:`~neuroevo.training.stack`; its
groups of nets with convolutions in :mod:`~neuroevo.training.spatial`, Adam over stacked nets
in :mod:`~neuroevo.training.adam`), the engines that train a generation
(:mod:`~neuroevo.training.engine`), one net trained alone (:mod:`~neuroevo.training.alone`)
and fixed ensembles (:mod:`~neuroevo.training.ensemble`). Knows nothing of DEAP, of evolution
or of run directories."""
