import os

# Tests pseudonymise with their own key (and so do not warn about the development key).
os.environ.setdefault("PRAKTIJKVARIATIE_PSEUDONYM_KEY", "test-key-not-secret")
