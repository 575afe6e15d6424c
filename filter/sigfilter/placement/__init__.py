"""Where the signature goes: marker, client footer, above the quote, or the end."""
