"""scalearn_lite: ScaLearn, exact, fast and teachable."""
