# depth: filled in by its rules
