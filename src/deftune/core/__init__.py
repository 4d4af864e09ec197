"""What every stage uses: precision by hardware (and, as the package grows, model loading, inference, statistics)."""
