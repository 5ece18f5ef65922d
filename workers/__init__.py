"""Worker processes: ``study-worker`` runs trials, ``study-launch`` starts many of them."""
