"""The process entry points, each module named after the command it is: ``study_worker``
(``study-worker``, one worker process: :func:`study.loop.work`), ``study_launch``
(``study-launch``, many local workers: :func:`study.launcher.launch`) and ``study_slurm``
(``study-slurm``, launchers as cluster jobs). The Dockerfile and a Kubernetes Job live here too."""
