"""The storage wing: safe reads and writes of files a user may have planted or edited
(:mod:`~neuroevo.storage.fileio`), the run directory's rules (:mod:`~neuroevo.storage.rundir`)
and pickle-free, checksummed checkpoints (:mod:`~neuroevo.storage.checkpoint`)."""
