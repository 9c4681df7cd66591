"""Training: the loop, optimizers and schedules, whitening, distillation, fine-tuning, lr-find."""
