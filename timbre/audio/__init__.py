"""Audio in: decode, validate, resample to the model rate, normalise and window; analyse. No
torch here."""
