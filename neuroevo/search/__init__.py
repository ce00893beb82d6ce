"""The search wing: the DEAP generation step (:mod:`~neuroevo.search.evolution`), islands
(:mod:`~neuroevo.search.islands`), the end of a run (:mod:`~neuroevo.search.final`), checking
the mixer's ranking against training alone (:mod:`~neuroevo.search.verify`) and the rank
correlations it reports (:mod:`~neuroevo.search.stats`). Ties the genome, training and storage
wings together."""
