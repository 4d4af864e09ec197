"""Training: methods and the configured Hugging Face Trainer."""
