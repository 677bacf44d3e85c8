"""Training and finetuning of world models."""
