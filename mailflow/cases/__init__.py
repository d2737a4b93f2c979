"""Cases: open and apply events through one door, lifecycles, effects, answers, follow-ups."""
