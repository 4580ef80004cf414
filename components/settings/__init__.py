"""The stack's settings: the typed model, its loading from a stack file and the value grammars."""
