"""Training: arguments, the accelerate loop, rows and collators, embedding caches of frozen towers, how a teacher
and a student are built from tower names, LoRA, the package's own CTC speech tower and its pretraining."""
